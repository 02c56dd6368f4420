"""Every mistake here must cost one warning naming this package, and nothing else."""

from irisbench import Attack, Model, Param, hookimpl


class Ok(Attack):
    name = "misdeclared_ok"
    description = "The one good class: it must still load"

    def poison(self, X, y, fraction, rng):
        return X.copy(), y.copy(), y != y


class NoComma(Ok):
    name = "misdeclared_no_comma"
    params = (Param("strength", float, 1.0, min=0.0))  # a Param, not a tuple


class Spaced(Ok):
    name = "misdeclared spaced"


class BadDefault(Ok):
    name = "misdeclared_bad_default"
    params = (Param("k", int, 0, "must be positive", min=1),)


class NoPoison(Attack):
    name = "misdeclared_no_poison"


class Dummy(Model):
    name = "misdeclared_model"

    def build(self, random_state):
        from sklearn.dummy import DummyClassifier

        return DummyClassifier()


@hookimpl
def irisbench_register_attacks():
    return [NoComma, Spaced, BadDefault, NoPoison, Ok]


@hookimpl
def irisbench_register_models():
    return Dummy  # one class, not a list


@hookimpl
def irisbench_register_atacks():  # misspelt
    return [Ok]


def irisbench_register_datasets():  # no @hookimpl
    return []
