"""What the training loop and the families raise when a run cannot go on."""


class NonFiniteLoss(RuntimeError):
    """Training produced NaN or infinite values it could not step over (a loss, gradients, the weights)."""
