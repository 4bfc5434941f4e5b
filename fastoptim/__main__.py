"""``fastoptim-demo`` (or ``python -m fastoptim`` outside the source tree): the textbook PyTorch
training loop, run on fastoptim.

Trains ``nn.Linear(10, 1)`` with MSE and SGD, exactly the seed's loop, on generated data with a
learnable target (y = w·x + b + a little noise), prints the loss falling and the time per
iteration.  ``--optimizer adam`` and friends swap the optimizer; ``--epochs`` sets the length.
"""
import argparse
import time

import fastoptim as torch
import fastoptim.nn as nn
import fastoptim.optim as optim

OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.01),
    "momentum": lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
    "adam": lambda p: optim.Adam(p, lr=0.01),
    "adamw": lambda p: optim.AdamW(p, lr=0.01),
    "rmsprop": lambda p: optim.RMSprop(p, lr=0.01),
    "adagrad": lambda p: optim.Adagrad(p, lr=0.1),
    "adadelta": lambda p: optim.Adadelta(p, lr=1.0),
}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="fastoptim-demo", description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2000)
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    true_w = torch.randn(1, 10)
    true_b = torch.randn(1)

    model = nn.Linear(10, 1)
    criterion = nn.MSELoss()
    optimizer = OPTIMIZERS[args.optimizer](model.parameters())
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=args.epochs // 2, gamma=0.5)
    print(f"fastoptim {torch.__version__}: nn.Linear(10, 1) + MSELoss + "
          f"{type(optimizer).__name__}, {args.epochs} iterations")

    report_every = max(1, args.epochs // 10)
    running, first, t0 = 0.0, None, time.perf_counter()
    for epoch in range(args.epochs):
        x = torch.randn(10)
        target = true_w @ x + true_b + 0.01 * torch.randn(1)
        outputs = model(x)
        loss = criterion(outputs, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item()
        if (epoch + 1) % report_every == 0:
            avg = running / report_every
            first = avg if first is None else first
            lr = scheduler.get_last_lr()[0]
            print(f"  iteration {epoch + 1:6d}  mean loss {avg:.6f}  lr {lr:g}")
            running = 0.0
    dt = time.perf_counter() - t0
    print(f"done: {dt / args.epochs * 1e6:.1f} µs per iteration; loss {first:.4f} -> {avg:.6f}")
    return 0 if avg < first else 1


if __name__ == "__main__":
    raise SystemExit(main())
