"""`netshrink quantize FILE --config static|dynamic|qat ...`: quantize a saved model file."""

from __future__ import annotations

import argparse

from netshrink.cli.options import (
    finite_float,
    integer,
    load_teachers,
    out_file,
    seed_int,
)
from netshrink.errors import NetshrinkError


def add_quantize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize", help="quantize a saved model (dynamic, static or quantization-aware)",
        description="Quantize a netshrink model file to integers and save it (int8 on disk). "
                    "static calibrates input ranges on the data set's training images; qat "
                    "fine-tunes with fake quantization, then converts.")
    p.add_argument("file", help="a model file written by netshrink (train, save)")
    p.add_argument("--config", required=True, choices=["dynamic", "static", "qat"])
    p.add_argument("--bits", type=integer, default=8, help="weight bits, 2-8 (default 8)")
    p.add_argument("--activation-bits", type=integer, default=None,
                   help="input bits (default: the widest this machine's kernel multiplies "
                        "exactly: 8, or 7 on x86 CPUs without VNNI)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per layer "
                   "instead of one per output channel")
    p.add_argument("--observer", default="mse",
                   choices=["minmax", "moving_average", "percentile", "mse"],
                   help="static: how input ranges are calibrated (default mse)")
    p.add_argument("--lsq", action="store_true", help="qat: learn step sizes (LSQ)")
    p.add_argument("--epochs", type=finite_float, default=1.0, help="qat: fine-tuning epochs")
    p.add_argument("--lr", type=finite_float, default=1e-4, help="qat: learning rate")
    p.add_argument("--batch-size", type=integer, default=128)
    p.add_argument("--teacher", default=None, metavar="FILE[,FILE...]",
                   help="qat: fine-tune by distillation from these model files (the float "
                        "FILE itself is a common teacher) instead of the labels alone")
    p.add_argument("--temperature", type=finite_float, default=4.0, help="qat with --teacher: T")
    p.add_argument("--alpha", type=finite_float, default=0.9,
                   help="qat with --teacher: weight of the soft-target loss")
    p.add_argument("--data", default="fashion-mnist",
                   help="calibration / training / test data (fashion-mnist, mnist, digits)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--granularity", default="row", choices=["row", "tensor"],
                   help="dynamic: one input scale per row (default) or per call")
    p.add_argument("--kernel", default=None, choices=["onednn", "int_mm", "reference"])
    p.add_argument("--onnx", default=None, metavar="OUT.onnx",
                   help="also export the integer model as ONNX")
    p.add_argument("--onnx-mode", default="qdq", choices=["qdq", "integer"],
                   help="qdq: QuantizeLinear/DequantizeLinear around float ops (static and "
                        "qat); integer: MatMulInteger/ConvInteger (static, qat, and dynamic "
                        "with --granularity tensor --activation-bits 8)")
    p.add_argument("--out", required=True, metavar="OUT.safetensors")
    p.set_defaults(run=run_quantize)


def _config(args):
    from netshrink.quant import QAT, Dynamic, Static

    common = {"bits": args.bits, "activation_bits": args.activation_bits,
              "per_channel": not args.per_tensor, "kernel": args.kernel}
    if args.config == "dynamic":
        return Dynamic(granularity=args.granularity, **common)
    if args.config == "static":
        return Static(observer=args.observer, **common)
    return QAT(lsq=args.lsq, **common)


def run_quantize(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    import netshrink
    from netshrink import data as datasets
    from netshrink.quant import convert, export_onnx
    from netshrink.train import TrainConfig, evaluate, fit, seed_everything

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise NetshrinkError(f"--out {args.out} must end in .safetensors")
    out_file(args.out)
    if args.onnx:
        out_file(args.onnx, "--onnx")
    if args.epochs <= 0:
        raise NetshrinkError(f"--epochs {args.epochs} must be positive")
    config = _config(args)
    teachers = _teachers(args)
    model = netshrink.load(args.file).eval()
    splits = datasets.load(args.data, root=args.data_root, seed=args.seed)
    seed_everything(args.seed)
    float_acc = _accuracy(model, splits, evaluate)
    float_bytes = Path(args.file).stat().st_size
    if args.config == "qat":
        train = TrainConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                            seed=args.seed, device="cpu")
        if teachers:
            from netshrink.distill import DistillConfig, distill
            from netshrink.distill.api import check_inputs

            soft = DistillConfig(temperature=args.temperature, alpha=args.alpha)
            check_inputs(model, teachers, splits, soft)  # before the model is changed
        print(netshrink.quantize_(model, config, data=splits))
        if teachers:
            distill(model, teachers, splits, soft, train, progress=False)
            print(f"fine-tuned by distillation from {args.teacher} (T={soft.temperature:g}, "
                  f"alpha={soft.alpha:g})")
        else:
            fit(model, splits, train, progress=False)
        report = convert(model)
        print(f"converted: {report.counts().get('integer', 0)} layers integer")
    else:
        print(netshrink.quantize_(model, config,
                                  data=splits if args.config == "static" else None))
    int_acc = _accuracy(model, splits, evaluate)
    if args.onnx:  # before saving: a model with no such ONNX form is one error, nothing written
        example = splits.test.tensors[0][:1].to(torch.float32)
        export_onnx(model, example, args.onnx, mode=args.onnx_mode)
        print(f"exported {args.onnx} ({args.onnx_mode})")
    distilled = ({"distill_teachers": args.teacher, "temperature": args.temperature,
                  "alpha": args.alpha} if teachers else {})
    netshrink.save(model, out, metadata={"quantize": config.to_dict(), "data": args.data,
                                         "density": _density(model),
                                         **distilled,
                                         "float_test_accuracy": float_acc,
                                         "test_accuracy": int_acc})
    size = out.stat().st_size
    print(f"{args.config}: {config.to_dict()}")
    print(f"test accuracy: float {100 * float_acc:.2f}% -> quantized {100 * int_acc:.2f}% "
          f"({args.data})")
    print(f"file: {float_bytes:,d} -> {size:,d} bytes ({float_bytes / size:.2f}x smaller)")
    print(f"saved {out}")
    return 0


def _density(model) -> float | None:
    """The pruned model's density, carried through quantization (None: nothing prunable)."""
    from netshrink.prune import density

    try:
        return density(model)
    except NetshrinkError:
        return None


def _teachers(args) -> list:
    """The --teacher models; only quantization-aware training has a training loss."""
    if args.teacher is None:
        return []
    if args.config != "qat":
        raise NetshrinkError(f"--teacher only applies to --config qat (it fine-tunes); "
                             f"--config {args.config} does not train")
    return load_teachers(args.teacher)[1]


def _accuracy(model, splits, evaluate) -> float:
    try:
        return evaluate(model, splits.test)[1]
    except RuntimeError as err:
        raise NetshrinkError(f"the model does not fit the data set's images "
                             f"{splits.input_shape}: {str(err).splitlines()[0]}") from None
