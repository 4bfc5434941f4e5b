"""The one optimizer table of the tests: per described optimizer (fastoptim/optim/_descriptions.py),
the settings the tests run it with.  What each optimizer IS (its kernel arguments, state keys,
first-step rule) comes from its description, never from here.

* ``"class"``: constructor kwargs (torch's upstream CPU configs, plus the flags our classes must
  accept), for the class-level tests (trajectories against torch, state dicts, repr, loading,
  the steady-state shortcut).
* ``"functional"``: every hyperparameter of the functional, by name, covering each flag, for the
  kernel tests (C against the NumPy twin and torch).  Three entries are not kernel arguments:
  ``initial_accumulator_value`` (Adagrad's state fill), ``init_lr`` (the lr a first state
  made from it holds, where the kernel does not take lr: Rprop's step sizes) and
  ``init_steps`` (per-tensor starting step counts).
* ``"batching"``: (constructor kwargs, the setting varied between param groups) for the group
  batching tests, keyed by case name.
"""

from fastoptim.optim._descriptions import BY_NAME

TABLE = {
    "sgd": {
        "class": [
            {"lr": 0.1},
            {"lr": 0.05, "weight_decay": 0.5},
            {"lr": 0.05, "momentum": 0.9},
            {"lr": 0.05, "momentum": 0.9, "dampening": 0.5},
            {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
            {"lr": 0.05, "weight_decay": 0.1, "maximize": True},
        ],
        "functional": [
            {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
             "maximize": False},
            {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01,
             "nesterov": False, "maximize": False},
            {"lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.1, "nesterov": True,
             "maximize": True},
            {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.2, "nesterov": False,
             "maximize": True},
        ],
        "batching": {
            "sgd": ({"lr": 0.05, "momentum": 0.9}, "lr"),
            "sgd_nesterov": ({"lr": 0.05, "momentum": 0.9, "nesterov": True}, "weight_decay"),
            "sgd_plain": ({"lr": 0.05}, "lr"),
        },
    },
    "adam": {
        "class": [
            {},
            {"lr": 0.01, "weight_decay": 0.1},
            {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
            {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "fused": True},
        ],
        "functional": [
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08, "weight_decay": 0.0,
             "amsgrad": False, "maximize": False},
            {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-06, "weight_decay": 0.1,
             "amsgrad": True, "maximize": True},
            # beta1 >= 0.5 means a lerp weight < 0.5; beta1 = 0.3 takes ATen's other branch
            {"lr": 0.001, "beta1": 0.3, "beta2": 0.9, "eps": 1e-08, "weight_decay": 0.05,
             "amsgrad": False, "maximize": False, "init_steps": (0, 3, 10, 0, 7)},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08, "weight_decay": 0.1,
             "amsgrad": True, "maximize": False, "decoupled_weight_decay": True},
        ],
        "batching": {
            "adam": ({"lr": 0.01}, "lr"),
            "adam_amsgrad": ({"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}, "weight_decay"),
        },
    },
    "adamw": {
        "class": [
            {},
            {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
            {"lr": 0.01, "weight_decay": 0.5, "maximize": True},
        ],
        "functional": [
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08, "weight_decay": 0.01,
             "amsgrad": False, "maximize": False},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-08, "weight_decay": 0.5,
             "amsgrad": True, "maximize": True},
        ],
        "batching": {
            "adamw": ({"lr": 0.01}, "weight_decay"),
        },
    },
    "rmsprop": {
        "class": [
            {},
            {"lr": 0.001, "weight_decay": 0.1, "centered": True},
            {"lr": 0.001, "weight_decay": 0.1, "centered": True, "momentum": 0.1},
            {"lr": 0.001, "momentum": 0.5, "maximize": True},
        ],
        "functional": [
            {"lr": 0.01, "alpha": 0.99, "eps": 1e-08, "weight_decay": 0.0, "momentum": 0.0,
             "centered": False, "maximize": False},
            {"lr": 0.01, "alpha": 0.9, "eps": 1e-06, "weight_decay": 0.1, "momentum": 0.9,
             "centered": True, "maximize": True},
            # alpha < 0.5: the centered grad average takes ATen's other lerp branch
            {"lr": 0.001, "alpha": 0.3, "eps": 1e-08, "weight_decay": 0.0, "momentum": 0.5,
             "centered": True, "maximize": False},
        ],
        "batching": {
            "rmsprop": ({"lr": 0.01, "momentum": 0.5, "centered": True}, "lr"),
        },
    },
    "adagrad": {
        "class": [
            {},
            {"lr": 0.1, "initial_accumulator_value": 0.1, "weight_decay": 0.1},
            {"lr": 0.1, "lr_decay": 0.5, "weight_decay": 0.1, "maximize": True},
        ],
        "functional": [
            {"lr": 0.01, "weight_decay": 0.0, "lr_decay": 0.0, "eps": 1e-10, "maximize": False},
            {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.5, "eps": 1e-10, "maximize": True,
             "initial_accumulator_value": 0.1},
            {"lr": 0.1, "weight_decay": 0.0, "lr_decay": 0.01, "eps": 1e-06, "maximize": False,
             "init_steps": (2, 0, 5, 1, 0)},
        ],
        "batching": {
            "adagrad": ({"lr": 0.05, "lr_decay": 0.01}, "weight_decay"),
        },
    },
    "adadelta": {
        "class": [
            {},
            {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
            {"rho": 0.95, "weight_decay": 0.9},
        ],
        "functional": [
            {"lr": 1.0, "rho": 0.9, "eps": 1e-06, "weight_decay": 0.0, "maximize": False},
            {"lr": 0.5, "rho": 0.5, "eps": 1e-06, "weight_decay": 0.1, "maximize": True},
        ],
        "batching": {
            "adadelta": ({"lr": 0.5}, "lr"),
        },
    },
    "adamax": {
        # torch's optim_inputs_func_adamax (CPU), then the flags our class must accept
        "class": [
            {},
            {"lr": 0.1},
            {"weight_decay": 0.1},
            {"maximize": True},
            {"weight_decay": 0.1, "maximize": True},
            {"lr": 0.01, "foreach": False, "differentiable": False},
        ],
        "functional": [
            {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08, "weight_decay": 0.0,
             "maximize": False},
            {"lr": 0.1, "beta1": 0.8, "beta2": 0.99, "eps": 1e-06, "weight_decay": 0.1,
             "maximize": True},
            # beta1 < 0.5: ATen's other lerp branch; steps from different counts
            {"lr": 0.01, "beta1": 0.3, "beta2": 0.9, "eps": 1e-08, "weight_decay": 0.05,
             "maximize": False, "init_steps": (0, 3, 10, 0, 7)},
        ],
        "batching": {
            "adamax": ({"lr": 0.01}, "lr"),
        },
    },

    "radam": {
        # torch's optim_inputs_func_radam (CPU), then the flags our class must accept
        "class": [
            {},
            {"lr": 2e-3},
            {"eps": 1e-6},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "decoupled_weight_decay": True},
            {"weight_decay": 0.1, "maximize": True},
            {"lr": 0.01, "foreach": False, "differentiable": False},
        ],
        "functional": [
            {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08, "weight_decay": 0.0,
             "decoupled_weight_decay": False, "maximize": False},
            # beta2 = 0.9: rectified from step 6 on, within the 20 steps
            {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 1e-06, "weight_decay": 0.1,
             "decoupled_weight_decay": True, "maximize": True},
            # beta1 < 0.5: ATen's other lerp branch; beta2 <= 0.6 is never rectified
            {"lr": 0.01, "beta1": 0.3, "beta2": 0.5, "eps": 1e-08, "weight_decay": 0.05,
             "decoupled_weight_decay": False, "maximize": False,
             "init_steps": (0, 3, 10, 0, 7)},
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-08, "weight_decay": 0.0,
             "decoupled_weight_decay": False, "maximize": False,
             "init_steps": (0, 30, 100, 0, 7)},
        ],
        "batching": {
            "radam": ({"lr": 0.01, "decoupled_weight_decay": True}, "weight_decay"),
        },
    },

    "rprop": {
        # torch's optim_inputs_func_rprop (CPU), then the flags our class must accept
        "class": [
            {},
            {"lr": 2e-4},
            {"etas": (0.5, 1.5)},
            {"step_sizes": (2e-6, 100)},
            {"maximize": True},
            {"lr": 0.01, "foreach": False, "differentiable": False},
        ],
        "functional": [
            {"etaminus": 0.5, "etaplus": 1.2, "step_size_min": 1e-06, "step_size_max": 50,
             "maximize": False, "init_lr": 0.01},
            # a tight clamp range: both bounds are hit within the 20 steps
            {"etaminus": 0.3, "etaplus": 1.5, "step_size_min": 0.005, "step_size_max": 0.02,
             "maximize": True, "init_lr": 0.01},
            {"etaminus": 0.5, "etaplus": 1.2, "step_size_min": 1e-06, "step_size_max": 50,
             "maximize": False, "init_lr": 0.1, "init_steps": (0, 3, 10, 0, 7)},
        ],
        "batching": {
            "rprop": ({"lr": 0.01, "etas": (0.4, 1.3)}, "lr"),
        },
    },

    "nadam": {
        # torch's optim_inputs_func_nadam (CPU), then the flags our class must accept
        "class": [
            {},
            {"lr": 1e-3},
            {"momentum_decay": 6e-3},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "momentum_decay": 6e-3},
            {"weight_decay": 0.1, "momentum_decay": 6e-3, "decoupled_weight_decay": True},
            {"weight_decay": 0.1, "maximize": True},
            {"lr": 0.01, "foreach": False, "differentiable": False},
        ],
        "functional": [
            {"lr": 0.002, "beta1": 0.9, "beta2": 0.999, "eps": 1e-08, "weight_decay": 0.0,
             "momentum_decay": 0.004, "decoupled_weight_decay": False, "maximize": False},
            {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-06, "weight_decay": 0.1,
             "momentum_decay": 0.006, "decoupled_weight_decay": True, "maximize": True},
            # beta1 < 0.5: ATen's other lerp branch; coupled decay
            {"lr": 0.01, "beta1": 0.3, "beta2": 0.9, "eps": 1e-08, "weight_decay": 0.05,
             "momentum_decay": 0.004, "decoupled_weight_decay": False, "maximize": False},
        ],
        "batching": {
            "nadam": ({"lr": 0.01}, "lr"),
        },
    },

    "asgd": {
        # torch's optim_inputs_func_asgd (CPU); t0 = 5 reaches the averaging within 20 steps
        "class": [
            {},
            {"lambd": 0.1},
            {"lr": 0.02},
            {"t0": 100},
            {"maximize": True},
            {"weight_decay": 0.1},
            {"weight_decay": 0.1, "maximize": True},
            {"t0": 5, "lambd": 0.01},
            {"lr": 0.01, "foreach": False, "differentiable": False},
        ],
        "functional": [
            {"lr": 0.01, "lambd": 0.0001, "alpha": 0.75, "t0": 1000000.0, "weight_decay": 0.0,
             "maximize": False},
            {"lr": 0.02, "lambd": 0.1, "alpha": 0.5, "t0": 5.0, "weight_decay": 0.1,
             "maximize": True},
            {"lr": 0.01, "lambd": 0.0001, "alpha": 0.75, "t0": 3.0, "weight_decay": 0.0,
             "maximize": False, "init_steps": (0, 3, 10, 0, 7)},
        ],
        "batching": {
            "asgd": ({"lr": 0.01, "t0": 5}, "lr"),
        },
    },
}



def class_cases():
    """(class name, kwargs) for every class-level case, in table order."""
    return [(BY_NAME[n].cls, kw) for n, row in TABLE.items() for kw in row["class"]]


def state_kinds(name):
    """How the kernel tests make each state list of a functional, from its description: None
    entries (SGD's buffers, made from the first grad), Adagrad's ``initial_accumulator_value``
    fill, zeros, the lr (``"lr"``: Rprop's step sizes), and 0-dim float32 scalars (``"scalar:1"``,
    ``"scalar:lr"``: NAdam's mu_product, ASGD's mu and eta); then the step counters."""
    d = BY_NAME[name]
    kinds = []
    for s in d.state:
        if d.first_step in ("from_grad", "eager"):
            kinds.append({"from_grad": "none", "eager": "iav"}[d.first_step])
        elif s.scalar:
            kinds.append(f"scalar:{s.init}")
        else:
            kinds.append("lr" if s.init == "lr" else "zeros")
    return kinds + (["step"] if d.step else [])
