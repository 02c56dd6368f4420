"""Built-in models: the decision tree of the original experiment and a chance baseline."""

from irisbench import Model, Param, hookimpl


class DecisionTree(Model):
    """scikit-learn's CART decision tree, the model of the original experiment."""

    name = "decision_tree"
    description = "scikit-learn DecisionTreeClassifier (CART), the original experiment's model"
    params = (
        Param("criterion", str, "gini", "split quality measure", choices=("gini", "entropy", "log_loss")),
        Param("max_depth", int, None, "maximum depth (default: grow until leaves are pure)", min=1),
    )

    def build(self, random_state):
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(criterion=self.criterion, max_depth=self.max_depth,
                                      random_state=random_state)


class Dummy(Model):
    """Predicts the majority class of the training set: the chance-level floor."""

    name = "dummy"
    description = "Majority-class baseline (scikit-learn DummyClassifier): the chance floor"

    def build(self, random_state):
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")


@hookimpl
def irisbench_register_models():
    return [DecisionTree, Dummy]
