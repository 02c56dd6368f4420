"""An attack from a package whose entry point is called ``example``, like its twin's."""

from irisbench import Attack, hookimpl


class Clash(Attack):
    name = "clash_b"
    description = "Flip nothing, from irisbench-clash-b"

    def poison(self, X, y, fraction, rng):
        return X.copy(), y.copy(), y != y


@hookimpl
def irisbench_register_attacks():
    return [Clash]
