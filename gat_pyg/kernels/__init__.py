"""Native kernels: placeholder until the extension lands."""


def available() -> bool:
    return False


def supports(tensor) -> bool:
    return False
