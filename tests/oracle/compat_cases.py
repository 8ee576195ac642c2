"""Networks for ``make_compat_reference.py`` and ``tests/contract/test_nt_compat_layers.py``,
as plain data built by either library's ``stax`` (neural-tangents' or ours).
"""
import numpy as np

# name -> (input kind, [layer spec]); a layer spec is (name, args, kwargs) or
# ("FanOut/parallel/FanInX", [branches of specs]).
CASES = {
    "concat_dense_identity": ("fc", [("Dense", (16,), {"W_std": 1.5, "b_std": 0.1}), ("FanOut", (2,), {}),
                                     ("parallel", [[("Relu", (), {})], [("Dense", (8,), {"W_std": 1.2})]]),
                                     ("FanInConcat", (), {}), ("Dense", (1,), {"W_std": 1.5})]),
    "gelu_approximate": ("fc", [("Dense", (16,), {"W_std": 1.5, "b_std": 0.1}), ("Gelu", (), {"approximate": True}),
                                ("Dense", (1,), {"W_std": 1.5})]),
    "cos": ("fc", [("Dense", (16,), {"W_std": 1.5, "b_std": 0.1}), ("Cos", (), {"a": 1.3, "b": 0.7, "c": 0.2}),
                   ("Dense", (1,), {"W_std": 1.5})]),
    "dropout_test": ("fc", [("Dense", (16,), {"W_std": 1.5, "b_std": 0.1}), ("Relu", (), {}),
                            ("Dropout", (0.8,), {"mode": "test"}), ("Dense", (1,), {"W_std": 1.5})]),
    "sumpool_same": ("image", [("Conv", (8, (2, 2)), {"padding": "SAME", "W_std": 1.5, "b_std": 0.1}),
                               ("Relu", (), {}), ("SumPool", ((2, 2),), {"padding": "SAME"}),
                               ("Flatten", (), {}), ("Dense", (1,), {"W_std": 1.5})]),
    "sumpool_valid_strided": ("image", [("Conv", (8, (2, 2)), {"W_std": 1.5}), ("Relu", (), {}),
                                        ("SumPool", ((2, 2), (2, 1)), {}), ("GlobalAvgPool", (), {}),
                                        ("Dense", (1,), {"W_std": 1.5})]),
    "global_sum_pool": ("image", [("Conv", (8, (2, 2)), {"padding": "SAME", "W_std": 1.5, "b_std": 0.1}),
                                  ("Relu", (), {}), ("GlobalSumPool", (), {}), ("Dense", (1,), {"W_std": 1.5})]),
}


def inputs(kind):
    rng = np.random.default_rng(0)
    if kind == "fc":
        return rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    return rng.normal(size=(3, 5, 4, 2)), rng.normal(size=(2, 5, 4, 2))


def build(stax, spec):
    layers = []
    for name, args, *rest in spec:
        if name == "parallel":
            layers.append(stax.parallel(*[build(stax, branch) for branch in args]))
        else:
            layers.append(getattr(stax, name)(*args, **(rest[0] if rest else {})))
    return stax.serial(*layers)
