"""A suite that raises."""


def run(threads, device, quick):
    raise RuntimeError("this suite is broken on purpose")
