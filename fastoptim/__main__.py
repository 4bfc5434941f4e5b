"""``fastoptim-demo``: the textbook PyTorch training loops, run on fastoptim.

Why it exists: it is the README's first command, so it shows what the library is for in a few
seconds on a fresh install.  Two parts:

1. Regression: ``nn.Linear(10, 1)`` with MSELoss and an optimizer on generated data with a
   learnable target (y = w.x + b + a little noise), one sample per iteration, as in the seed's
   loop.  It prints the loss falling (means over blocks of iterations) and the time per
   iteration of *this* loop, which draws the input, builds the target, steps StepLR and calls
   ``.item()`` each iteration; the README's "full iteration" figure times only the
   forward/loss/zero_grad/backward/step part, so it is smaller.
2. Classification: a small MLP (10-32-3, ReLU) on generated Gaussian blobs, trained with
   CrossEntropyLoss from a shuffled DataLoader with StepLR, once per optimizer, with a progress
   bar and a final table (loss, accuracy, microseconds per step; torch 2.13's time for the
   same loop beside it when torch is installed).  With matplotlib installed it also writes a
   PNG of the loss curves (``--plot``).
"""
import argparse
import sys
import time

import fastoptim as torch
import fastoptim.nn as nn
import fastoptim.optim as optim

# the optimizers and the learning rates the demo uses with them (one table for both parts)
LR = {"sgd": 0.01, "momentum": 0.01, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01,
      "adagrad": 0.1, "adadelta": 1.0}


def make_optimizer(optim_mod, name, params, lr_scale=1.0):
    lr = LR[name] * lr_scale
    if name == "sgd":
        return optim_mod.SGD(params, lr=lr)
    if name == "momentum":
        return optim_mod.SGD(params, lr=lr, momentum=0.9)
    cls = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad",
           "adadelta": "Adadelta"}[name]
    return getattr(optim_mod, cls)(params, lr=lr)


DESCRIPTION = (
    "Train nn.Linear(10, 1) with MSELoss (one sample per iteration), then a small MLP "
    "classifier with CrossEntropyLoss, a shuffled DataLoader and StepLR under each optimizer, "
    "all on generated data, and print the losses, accuracies and time per step.")


def _parser():
    ap = argparse.ArgumentParser(prog="fastoptim-demo", description=DESCRIPTION)
    ap.add_argument("--epochs", type=int, default=2000,
                    help="iterations of the regression loop (default: 2000; 0 skips it)")
    ap.add_argument("--optimizer", choices=sorted(LR), default="sgd",
                    help="optimizer of the regression loop (default: sgd)")
    ap.add_argument("--classifier-epochs", type=int, default=5,
                    help="epochs of the MLP classifier per optimizer (default: 5; 0 skips it)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generated data and models")
    ap.add_argument("--plot", default="fastoptim-demo-loss.png",
                    help="PNG of the classifier's loss curves, written when matplotlib is "
                         "installed (default: %(default)s; '' to skip)")
    ap.add_argument("--no-torch", action="store_true",
                    help="do not time torch beside fastoptim even when it is installed")
    return ap


# ---- part 1: the seed's regression loop ------------------------------------------------------
def regression(epochs, opt_name, seed):
    if epochs < 0:
        raise SystemExit("fastoptim-demo: --epochs must be >= 0")
    if epochs == 0:
        print("regression: --epochs 0, nothing to train")
        return True
    torch.manual_seed(seed)
    true_w = torch.randn(1, 10)
    true_b = torch.randn(1)
    model = nn.Linear(10, 1)
    criterion = nn.MSELoss()
    optimizer = make_optimizer(optim, opt_name, model.parameters())
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 2), gamma=0.5)
    print(f"fastoptim {torch.__version__}: nn.Linear(10, 1) + MSELoss + "
          f"{type(optimizer).__name__}, {epochs} iterations")
    block = max(1, epochs // 10)
    running, count, means = 0.0, 0, []
    t0 = time.perf_counter()
    for it in range(epochs):
        x = torch.randn(10)
        target = true_w @ x + true_b + 0.01 * torch.randn(1)
        outputs = model(x)
        loss = criterion(outputs, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item()
        count += 1
        if count == block or it == epochs - 1:
            means.append((it + 1 - count + 1, it + 1, running / count))
            lr = scheduler.get_last_lr()[0]
            print(f"  iterations {it + 2 - count:6d}-{it + 1:<6d} mean loss {running / count:.6f}"
                  f"  lr {lr:g}")
            running, count = 0.0, 0
    dt = time.perf_counter() - t0
    (a0, a1, first), (b0, b1, last) = means[0], means[-1]
    print(f"done: mean loss {first:.4f} over iterations {a0}-{a1} -> {last:.6f} over "
          f"{b0}-{b1}")
    print(f"      {dt / epochs * 1e6:.1f} µs per iteration of this loop (it also draws x, builds "
          "the target, steps StepLR and calls .item(); the README's 'full iteration' figure "
          "times the forward/loss/zero_grad/backward/step part alone)")
    return len(means) == 1 or last < first


# ---- part 2: an MLP classifier per optimizer -------------------------------------------------
def make_blobs(lib, n, seed):
    """n points in 10-D around 3 random centres (class = centre), from fastoptim's generator
    (the same numbers feed torch, through numpy, when it is timed)."""
    torch.manual_seed(seed + 1)
    centres = torch.randn(3, 10) * 0.6     # overlapping: accuracy stays below 100%
    labels = (torch.rand(n) * 3).long()      # uniform over 0, 1, 2
    x = centres[labels] + torch.randn(n, 10)
    return x, labels


def _bar(name, done, total, width=24):
    k = width * done // total if total else width
    return f"  {name:<9}[{'#' * k}{'.' * (width - k)}] {done}/{total} steps"


def train_classifier(lib, lib_optim, lib_nn, name, X, Y, epochs, seed, show):
    """Train 10-32-3 with CrossEntropyLoss; returns (per-epoch mean losses, final loss,
    accuracy, seconds per step).  Written once for both libraries (``lib`` is fastoptim or
    torch): the identical textbook loop."""
    lib.manual_seed(seed + 2)
    model = lib_nn.Sequential(lib_nn.Linear(10, 32), lib_nn.ReLU(), lib_nn.Linear(32, 3))
    if lib is not torch:   # same initial weights in both libraries
        with lib.no_grad():
            for p, q in zip(model.parameters(), _fo_init(seed)):
                p.copy_(lib.from_numpy(q))
    criterion = lib_nn.CrossEntropyLoss()
    optimizer = make_optimizer(lib_optim, name, model.parameters(), lr_scale=5.0)
    scheduler = lib_optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 2),
                                              gamma=0.5)
    gen = lib.Generator().manual_seed(seed)
    loader = lib.utils.data.DataLoader(lib.utils.data.TensorDataset(X, Y), batch_size=64,
                                       shuffle=True, generator=gen)
    total = epochs * len(loader)
    curve, steps, elapsed = [], 0, 0.0
    for _ in range(epochs):
        running, nb = 0.0, 0
        t0 = time.perf_counter()
        for xb, yb in loader:
            loss = criterion(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
            nb += 1
        elapsed += time.perf_counter() - t0
        steps += nb
        scheduler.step()
        curve.append(running / nb)
        if show:
            sys.stdout.write("\r" + _bar(name, steps, total))
            sys.stdout.flush()
    if show:
        sys.stdout.write("\r" + " " * 60 + "\r")
    with lib.no_grad():
        logits = model(X)
        final = criterion(logits, Y).item()
        acc = float((logits.numpy().argmax(1) == Y.numpy()).mean())
    return curve, final, acc, elapsed / max(1, steps)


_INIT = {}


def _fo_init(seed):
    """The classifier's initial weights (fastoptim's draw), as numpy arrays, shared with the
    torch run so both start from the same point."""
    if seed not in _INIT:
        torch.manual_seed(seed + 2)
        m = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
        _INIT[seed] = [p.detach().numpy().copy() for p in m.parameters()]
    return _INIT[seed]


def classification(epochs, seed, plot, use_torch):
    if epochs < 0:
        raise SystemExit("fastoptim-demo: --classifier-epochs must be >= 0")
    if epochs == 0:
        print("classifier: --classifier-epochs 0, nothing to train")
        return True
    X, Y = make_blobs(torch, 1536, seed)
    real_torch = None
    if use_torch:
        try:
            import torch as real_torch
        except ImportError:
            real_torch = None
    print(f"\nMLP 10-32-3 + CrossEntropyLoss, DataLoader(batch_size=64, shuffle=True), StepLR, "
          f"{epochs} epochs of {len(X) // 64} steps per optimizer")
    show = sys.stdout.isatty()
    rows, curves, ok = [], {}, True
    for name in LR:
        curve, final, acc, dt = train_classifier(torch, optim, nn, name, X, Y, epochs, seed,
                                                 show)
        t_dt = None
        if real_torch is not None:
            tX = real_torch.from_numpy(X.numpy())
            tY = real_torch.from_numpy(Y.numpy())
            t_dt = train_classifier(real_torch, real_torch.optim, real_torch.nn, name, tX, tY,
                                    epochs, seed, False)[3]
        curves[name] = curve
        rows.append((name, curve[0], final, acc, dt, t_dt))
        ok = ok and final < curve[0]
        print(_bar(name, epochs * (len(X) // 64), epochs * (len(X) // 64)) +
              f"  loss {final:.4f}  accuracy {acc:.1%}")
    head = f"  {'optimizer':<10}{'loss (epoch 1 -> end)':>24}{'accuracy':>10}{'µs/step':>10}"
    if real_torch is not None:
        head += f"{'torch µs/step':>15}{'ratio':>8}"
    print("\n" + head)
    for name, l0, l1, acc, dt, t_dt in rows:
        line = f"  {name:<10}{l0:>13.4f} -> {l1:<7.4f}{acc:>10.1%}{dt * 1e6:>10.1f}"
        if t_dt is not None:
            line += f"{t_dt * 1e6:>15.1f}{dt / t_dt:>7.2f}x"
        print(line)
    print("  (µs/step: one DataLoader batch of 64 + forward + CrossEntropyLoss + zero_grad + "
          "backward + step + .item(); epoch 1's loss is that epoch's mean)")
    if real_torch is None and use_torch:
        print("  (install torch==2.13.0 to see torch's time for the same loop beside ours)")
    if plot:
        _plot(curves, plot)
    return ok


def _plot(curves, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (install matplotlib to get a PNG of the loss curves)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean CrossEntropyLoss")
    ax.set_yscale("log")
    ax.set_title("fastoptim-demo: MLP classifier, one curve per optimizer")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"  loss curves written to {path}")


def main(argv=None):
    args = _parser().parse_args(argv)
    ok = regression(args.epochs, args.optimizer, args.seed)
    ok = classification(args.classifier_epochs, args.seed, args.plot, not args.no_torch) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
