"""A clock the tests move by hand, for the objects that take one (``clock=``)."""


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self):
        return self.now
