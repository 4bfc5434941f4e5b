"""fastoptim: a compiled, torch-exact drop-in for the core of torch.optim on the CPU."""
__version__ = "0.1.0"
