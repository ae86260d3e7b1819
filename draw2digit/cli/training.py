"""Commands that make and measure models: ``train``, ``calibrate``, ``evaluate``, ``finetune``,
``quantize``, ``publish``, ``bench``, ``report``.

TensorFlow is imported when a command trains or loads a Keras model, not when the
parser is built, so ``draw2digit --help`` and the serving commands stay fast.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from draw2digit.artifacts import CARD_FILE, MODEL_FILE, TFLITE_FILE, ModelCard, default_model_dir
from draw2digit.artifacts import resolve_model_path as resolve
from draw2digit.cli.common import (
    CORRECTIONS_HELP,
    EXIT_NOT_PUBLISHED,
    MODEL_HELP,
    CLIError,
    non_negative_int,
    refuse_overwrite,
)
from draw2digit.feedback import MAX_PER_CLIENT, FeedbackStore
from draw2digit.predictor import Predictor
from draw2digit.training import report as figures
from draw2digit.training.bench import benchmark
from draw2digit.training.calibrate import (
    CalibrationConfig,
    render_calibration,
    run_calibration,
    save_calibration,
)
from draw2digit.training.config import (
    ConfigError,
    Stage,
    TrainConfig,
    load_recipe,
    parse_override,
    writers_from,
)
from draw2digit.training.data import load_split
from draw2digit.training.evaluate import NOT_WORSE_TOLERANCE
from draw2digit.training.export import quantize_folder
from draw2digit.training.finetune import FinetuneConfig, finetune
from draw2digit.training.measure import (
    EvaluateOptions,
    as_json,
    before_after_lines,
    render_evaluation,
    run_evaluation,
)
from draw2digit.training.publish import publish_if_not_worse
from draw2digit.training.train import train


def _stages(args: argparse.Namespace) -> list[Stage]:
    if args.recipe:
        stages = load_recipe(args.recipe, args.set, args.out)
        if args.stage:
            chosen = [s for s in stages if s.name == args.stage]
            if not chosen:
                raise CLIError(
                    f"{args.recipe} has no stage {args.stage!r}: {', '.join(s.name for s in stages)}"
                )
            return chosen
        return stages
    if args.stage:
        raise CLIError("--stage names a stage of a --recipe")
    values = dict(parse_override(o) for o in args.set)
    if any("." in key for key in values):
        raise CLIError("STAGE.FIELD=VALUE names a stage of a --recipe")
    config = TrainConfig.from_dict(values)
    out = Path(args.out or time.strftime("runs/train-%Y%m%d-%H%M%S"))
    return [Stage("train", out, config, {"overrides": list(args.set)} if args.set else {})]


def _done_already(stage: Stage) -> bool:
    """A stage whose folder holds a model trained with the same config and recipe (a resumed recipe)."""
    card = ModelCard.read(stage.out)
    return (stage.out / MODEL_FILE).exists() and card.config == stage.config.to_dict() and bool(card.recipe)


def cmd_train(args: argparse.Namespace) -> int:
    stages = _stages(args)  # every stage checked before the first one trains
    for stage in stages:
        if stage.config.init_from and not any(s.out == Path(stage.config.init_from) for s in stages):
            source = resolve(stage.config.init_from, ".keras").parent
            width = ModelCard.read(source).config.get("width", stage.config.width)
            if width != stage.config.width:
                raise CLIError(
                    f"init_from {stage.config.init_from} has width {width}: it can only seed a model "
                    f"of the same width (width = {width}), not width = {stage.config.width}"
                )
    for stage in stages:
        if not args.force and _done_already(stage):
            print(f"Stage {stage.name}: {stage.out} already holds it; skipping (--force trains it again)")
            continue
        refuse_overwrite(stage.out, args.force)
        print(f"Stage {stage.name}: training into {stage.out}", flush=True)
        card = train(stage.config, stage.out, verbose=2 if args.quiet else "auto", recipe=stage.recipe)
        print(
            f"Done in {card['training_seconds']:.0f} s ({card['seconds_per_epoch']:.1f} s/epoch). "
            f"Test accuracy {100 * card['test_accuracy']:.2f} %. "
            f"Wrote {stage.out / MODEL_FILE} and {stage.out / CARD_FILE}.",
            flush=True,
        )
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    store = FeedbackStore(args.corrections)
    corrections = store.load(max_per_client=args.max_per_client or None)
    if len(corrections.labels) == 0:
        raise CLIError(f"no corrections in {store}: correct some predictions on the page or pad first")
    if args.dry_run:
        cap = f"at most {args.max_per_client} a client" if args.max_per_client else "no cap a client"
        print(f"{store}: {len(corrections.labels)} corrections would be used ({cap})")
        return 0
    out = Path(args.out or time.strftime("runs/finetune-%Y%m%d-%H%M%S"))
    refuse_overwrite(out, args.force)
    print(f"Fine-tuning {args.model or 'the shipped model'} on MNIST + {len(corrections.labels)} corrections")
    config = FinetuneConfig(
        epochs=args.epochs, learning_rate=args.learning_rate, mnist_limit=args.mnist_limit
    )
    card = finetune(
        args.model or default_model_dir(), corrections, out, config, verbose=2 if args.quiet else "auto"
    )
    ft = card["finetune"]
    print(
        f"Wrote {out} (version {card['version']}): {ft['corrections_used']} corrections used, "
        f"{ft['corrections_held_back']} held back"
    )
    print("\n".join(before_after_lines(ft["before"], ft["after"])))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    """The same weights stored as int8 for serving; its calibration must be fitted again."""
    source = resolve(args.model, ".keras").parent  # a clear error before TensorFlow loads
    out = Path(args.out)
    if out.resolve() == source.resolve():
        raise CLIError("--out must be another folder: the float model stays as it is")
    refuse_overwrite(out, args.force)
    card = quantize_folder(source, out, test=load_split("test"))  # the card's MNIST figure: int8's own
    size = (out / TFLITE_FILE).stat().st_size
    floating = card.get("keras_test_accuracy")
    versus = f", float {100 * floating:.2f} %" if floating is not None else ""
    print(
        f"Wrote {out} ({card['litert_weights']} weights, model.tflite {size / 1e6:.1f} MB, "
        f"MNIST test {100 * card['test_accuracy']:.2f} %{versus}). "
        f"Its rejection rule is fitted to the float model's answers: next, draw2digit calibrate --model {out}"
    )
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    config = CalibrationConfig(args.non_digits, args.fit_images, args.max_false_rejection, args.seed)
    predictor = Predictor(args.model)
    not_digits = FeedbackStore(args.corrections).not_digits() if args.corrections else None
    report, gaussians = run_calibration(predictor, config, not_digits)
    folder = Path(args.out) if args.out else predictor.model_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    out = save_calibration(report, gaussians, folder)
    print(
        json.dumps(report, indent=2)
        if args.json
        else f"{render_calibration(report, config.max_false_rejection)}\n\nWrote {out}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    opts = EvaluateOptions(
        model=args.model,
        backend=args.backend,
        writers=writers_from(args.writers, "--writers"),  # a typo fails before minutes of work
        pen=args.pen,
        numbers=args.numbers,
        numbers_from=args.numbers_from,
        redrawn=args.redrawn,
        ablation=args.ablation,
        tilt=args.tilt,
        seed=args.seed,
        baseline=args.baseline,
        corrections=args.corrections,
        figures=args.figures,
        personal=args.personal,
        correct_share=args.correct_share,
    )
    if args.personal and not args.pen:
        raise CLIError("--personal measures learning on real pen drawings: add --pen")
    if not 0 < args.correct_share <= 1:
        raise CLIError("--correct-share must be above 0 and at most 1, e.g. 0.5")
    if args.personal and args.backend != "litert":
        raise CLIError("--personal runs through the server, which serves the LiteRT model: drop --backend")
    result = run_evaluation(opts)
    if args.save:
        Path(args.save).write_text(json.dumps(as_json(result), indent=2) + "\n")
    print(json.dumps(as_json(result), indent=2) if args.json else render_evaluation(result, opts))
    if args.save:
        print(f"Wrote {args.save}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """The retraining job's last step: a candidate goes into service only if it is not worse."""
    result = publish_if_not_worse(
        args.candidate,
        args.into,
        corrections=args.corrections,
        tolerance=args.tolerance,
        if_empty=args.if_empty,
    )
    print(result.message)
    return 0 if result.published or args.if_empty else EXIT_NOT_PUBLISHED


def cmd_bench(args: argparse.Namespace) -> int:
    print(benchmark(args.model, args.runs, args.compare_keras).table())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(figures.render(figures.collect(Path(args.models))))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a recipe file; write model, card and plots")
    p.add_argument(
        "--recipe", metavar="FILE", help="recipe file, e.g. recipes/shipped.toml (default: defaults)"
    )
    p.add_argument("--stage", metavar="NAME", help="train only this stage of the recipe")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a field for an experiment (repeatable), e.g. epochs=2 for every stage, "
        "pieces.epochs=2 for one stage of the recipe; the fields: " + ", ".join(TrainConfig.fields()),
    )
    p.add_argument(
        "--out", help="output folder of the last stage (default: the recipe's, or runs/train-<time>)"
    )
    p.add_argument("--force", action="store_true", help="train again into folders that hold a model")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("calibrate", help="fit the confidence temperature and the not-a-digit rule")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--out", metavar="DIR", help="where to write calibration.json (default: beside the model)")
    p.add_argument(
        "--corrections",
        metavar="DB",
        help='also fit the rule on drawings people corrected to "not a digit" in this corrections database',
    )
    c = CalibrationConfig()
    p.add_argument("--non-digits", type=int, default=c.non_digits, metavar="N", help="non-digits per family")
    p.add_argument(
        "--max-false-rejection",
        type=float,
        default=c.max_false_rejection,
        metavar="SHARE",
        help="the most real digits a rule may reject, of MNIST validation and of the tuning writers' pen "
        "digits (default %(default)s: 1 %%; lower keeps more real digits and rejects fewer non-digits)",
    )
    p.add_argument(
        "--fit-images", type=int, default=c.fit_images, help="MNIST images for the class Gaussians"
    )
    p.add_argument("--seed", type=int, default=c.seed)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evaluate", help="accuracy on MNIST, real pen digits, numbers; figures")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument(
        "--backend", choices=["litert", "keras"], default="litert", help="default: litert (served)"
    )
    p.add_argument("--figures", metavar="DIR", help="also write confusion, per-class and mistakes PNGs")
    p.add_argument("--redrawn", type=int, default=0, metavar="N", help="also score N re-drawn test digits")
    p.add_argument("--ablation", action="store_true", help="with --redrawn: also without each step")
    p.add_argument(
        "--tilt", type=float, default=0.0, metavar="DEG", help="with --redrawn: rotate and slant too"
    )
    p.add_argument(
        "--pen", action="store_true", help="also score real pen digits of held-out writers (the headline)"
    )
    p.add_argument(
        "--writers",
        default="heldout",
        help="pen writers for --pen and --numbers: heldout (default), tuning, all, or e.g. 5,7,14",
    )
    p.add_argument(
        "--personal",
        action="store_true",
        help="with --pen: also online, one user per writer, each wrong answer corrected through the API",
    )
    p.add_argument(
        "--correct-share",
        type=float,
        default=1.0,
        metavar="P",
        help="with --personal: the share of wrong answers the writer corrects (default 1)",
    )
    p.add_argument(
        "--numbers", type=int, default=0, metavar="N", help="also score N composed numbers per length"
    )
    p.add_argument("--numbers-from", choices=["pen", "mnist"], default="pen", help="digits for --numbers")
    p.add_argument("--seed", type=int, default=0, help="seed for the drawings' styles (default 0)")
    p.add_argument(
        "--baseline",
        metavar="MODEL",
        help="also score this model (e.g. the one fine-tuned from); with --pen, drawing by drawing",
    )
    p.add_argument("--corrections", metavar="DB", help=CORRECTIONS_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--save", metavar="FILE", help="also write the figures as JSON (what `draw2digit report` reads)"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("finetune", help="fine-tune a model on MNIST plus the stored corrections")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--corrections", metavar="DB", help=CORRECTIONS_HELP)
    p.add_argument("--out", help="output folder (default: runs/finetune-<time>)")
    f = FinetuneConfig()
    p.add_argument("--epochs", type=int, default=f.epochs)
    p.add_argument("--learning-rate", type=float, default=f.learning_rate)
    p.add_argument(
        "--mnist-limit", type=int, metavar="N", help="use only N MNIST training images (quick try)"
    )
    p.add_argument(
        "--max-per-client",
        type=non_negative_int,
        default=MAX_PER_CLIENT,
        metavar="N",
        help="each client's newest N corrections at most (default %(default)s; 0: no cap), so that no "
        "single client makes most of the fine-tuning set",
    )
    p.add_argument("--dry-run", action="store_true", help="say which corrections it would use, and stop")
    p.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("quantize", help="a copy of a model folder serving int8 weights (then calibrate it)")
    p.add_argument("model", help="model folder with model.keras, e.g. models/ or runs/full")
    p.add_argument("--out", required=True, help="where to write the quantized copy")
    p.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("publish", help="put a model into service if it is not worse than the one there")
    p.add_argument("candidate", help="model folder, e.g. what `draw2digit finetune` wrote")
    p.add_argument("--into", required=True, metavar="DIR", help="models folder whose `current` servers read")
    p.add_argument("--corrections", metavar="DB", help=CORRECTIONS_HELP)
    p.add_argument(
        "--tolerance",
        type=float,
        default=NOT_WORSE_TOLERANCE,
        help="MNIST accuracy it may lose (default %(default)s)",
    )
    p.add_argument(
        "--if-empty", action="store_true", help="only when nothing is in service yet (first start)"
    )
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("bench", help="latency and throughput of preprocessing + inference")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--compare-keras", action="store_true", help="also time Keras predict/call/tf.function")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "report", help="the figures table of the shipped models (the README's), from their cards"
    )
    p.add_argument(
        "--models", default="models", metavar="DIR", help="the models folder (default %(default)s)"
    )
    p.set_defaults(func=cmd_report)


__all__ = ["ConfigError", "add_commands"]
