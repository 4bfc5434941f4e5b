"""A dependency-free progress bar on stderr.

Why it exists: a full run takes minutes and the suite must not add a dependency for a bar.  On a
terminal it redraws one line; elsewhere (CI logs, pytest capture) it prints one plain line per
task so the log stays readable.  The worker processes of one run share a single count: the parent
tells each worker where its tasks start in the total.
"""

import sys
import time


class Bar:
    """``Bar(total, start=0)``; ``step(label)`` before each task, ``close()`` at the end."""

    width = 30

    def __init__(self, total, start=0, stream=None):
        self.total = max(int(total), 1)
        self.done = int(start)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.t0 = time.monotonic()

    def step(self, label):
        """Show that task ``label`` starts now (the tasks before it are done)."""
        frac = self.done / self.total
        filled = round(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"[{bar}] {self.done:3d}/{self.total} {frac:4.0%} "
                f"{time.monotonic() - self.t0:5.0f}s  {label}")
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
