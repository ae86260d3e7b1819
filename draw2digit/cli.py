"""``draw2digit train | finetune | calibrate | evaluate | predict | bench | serve | voila``.

Every user error (bad path, not an image, missing data or model) ends in one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
EXIT_NOT_PUBLISHED = 3  # publish: the candidate was worse; the model in service stays


class CLIError(Exception):
    """A problem the user can fix; printed as one line."""


# ---------------------------------------------------------------- train


def _refuse_overwrite(out: Path, force: bool) -> None:
    """A run that writes a model never silently replaces one (train, finetune, blend)."""
    from draw2digit.artifacts import MODEL_FILE

    if (out / MODEL_FILE).exists() and not force:
        raise CLIError(f"{out / MODEL_FILE} exists; pass --force to overwrite it or choose another --out")


def _class_weights(text: str) -> tuple[tuple[int, float], ...]:
    """``7:3,9:2`` -> ((7, 3.0), (9, 2.0)): argparse's ``type=``, so a bad pair is a usage error."""
    pairs = []
    for part in text.split(","):
        digit, _, weight = part.strip().partition(":")
        try:
            pair = (int(digit), float(weight))
        except ValueError:
            pair = None
        if pair is None or not (0 <= pair[0] <= 9 and pair[1] > 0) or pair[0] in dict(pairs):
            raise argparse.ArgumentTypeError(
                f"expected digit:weight pairs like 7:3,9:2 (each digit 0-9 once, "
                f"weights over 0), not {text!r}"
            )
        pairs.append(pair)
    return tuple(pairs)


def cmd_train(args: argparse.Namespace) -> int:
    from draw2digit.artifacts import CARD_FILE, MODEL_FILE
    from draw2digit.train import TrainConfig, train

    out = Path(args.out or time.strftime("runs/train-%Y%m%d-%H%M%S"))
    if not 0.0 <= args.distill_weight <= 1.0:
        raise CLIError(f"--distill-weight is a share between 0 and 1, not {args.distill_weight}")
    if args.pen_writers and not args.pen_copies:
        raise CLIError("--pen-writers needs --pen-copies N (how many drawings of each pen digit)")
    if args.pen_perturb != 1.0 and (args.pen_perturb < 0 or not args.pen_copies):
        raise CLIError("--pen-perturb bends the pen digits' strokes: it needs --pen-copies N, and 0 or more")
    if args.pen_morph and not (0 < args.pen_morph <= 1 and args.pen_copies):
        raise CLIError("--pen-morph is a share of the pen copies: it needs --pen-copies N, and 0 to 1")
    if args.cut_pieces and (args.cut_pieces < 0 or not args.pen_copies):
        raise CLIError("--cut-pieces cuts the pen digits in pairs: it needs --pen-copies N, and 0 or more")
    if args.style_coverage and not args.pen_copies:
        raise CLIError("--style-coverage varies the pen digits: it needs --pen-copies N")
    if args.scribble_crossings and (args.scribble_crossings < 0 or not args.non_digits):
        raise CLIError("--scribble-crossings shapes the non-digits: it needs --non-digits N, and 0 or more")
    if args.extra_shapes and not args.non_digits:
        raise CLIError("--extra-shapes widens the non-digits: it needs --non-digits N")
    if args.outlier_loss != "class" and not args.non_digits:
        raise CLIError("--outlier-loss says how the non-digits are learned: it needs --non-digits N")
    if args.elastic < 0 or (args.elastic and args.no_augment):
        raise CLIError(
            "--elastic is a strength of 0 or more, and part of augmentation (not with --no-augment)"
        )
    if args.init_from:
        from draw2digit.artifacts import read_model_card, resolve_model_path

        source = resolve_model_path(args.init_from, ".keras").parent
        source_width = read_model_card(source).get("config", {}).get("width", args.width)
        if source_width > args.width:
            raise CLIError(
                f"--init-from {args.init_from} has width {source_width}: it can seed a model as wide "
                f"or wider (--width {source_width} or more), not --width {args.width}"
            )
    _refuse_overwrite(out, args.force)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        width=args.width,
        augment=not args.no_augment,
        elastic=args.elastic,
        seed=args.seed,
        limit=args.limit,
        warmup_epochs=args.warmup_epochs,
        pen_copies=args.pen_copies,
        pen_writers=_writers(args.pen_writers, "--pen-writers") if args.pen_writers else None,
        pen_style_coverage=args.style_coverage,
        pen_perturb=args.pen_perturb,
        pen_morph=args.pen_morph,
        cut_pieces=args.cut_pieces,
        non_digits=args.non_digits,
        scribble_crossings=args.scribble_crossings,
        extra_shapes=args.extra_shapes,
        outlier_loss=args.outlier_loss,
        init_from=args.init_from,
        distill_from=args.distill_from,
        distill_weight=args.distill_weight,
        mnist_class_weights=args.mnist_class_weights,
        quantize=args.quantize,
    )
    print(f"Training into {out} with {config}", flush=True)
    card = train(config, out, verbose=2 if args.quiet else "auto")
    print(
        f"Done in {card['training_seconds']:.0f} s ({card['seconds_per_epoch']:.1f} s/epoch). "
        f"Test accuracy {100 * card['test_accuracy']:.2f} %. Wrote {out / MODEL_FILE} and {out / CARD_FILE}."
    )
    return 0


# ---------------------------------------------------------------- finetune


def cmd_finetune(args: argparse.Namespace) -> int:
    from draw2digit.artifacts import default_model_dir
    from draw2digit.feedback import FeedbackStore
    from draw2digit.train import FinetuneConfig, finetune

    store = FeedbackStore(args.corrections)
    corrections = store.load()
    if len(corrections.labels) == 0:
        raise CLIError(f"no corrections in {store}: correct some predictions on the page or pad first")
    out = Path(args.out or time.strftime("runs/finetune-%Y%m%d-%H%M%S"))
    _refuse_overwrite(out, args.force)
    print(f"Fine-tuning {args.model or 'the shipped model'} on MNIST + {len(corrections.labels)} corrections")
    card = finetune(
        args.model or default_model_dir(),
        corrections,
        out,
        FinetuneConfig(epochs=args.epochs, learning_rate=args.learning_rate, mnist_limit=args.mnist_limit),
        verbose=2 if args.quiet else "auto",
    )
    ft = card["finetune"]
    print(
        f"Wrote {out} (version {card['version']}): {ft['corrections_used']} corrections used, "
        f"{ft['corrections_held_back']} held back"
    )
    _print_before_after(ft["before"], ft["after"])
    return 0


def _print_before_after(before: dict, after: dict) -> None:
    print(f"{'':<32}{'before':>10}{'after':>10}")
    names = {"mnist_test_accuracy": "MNIST test set", "heldout_corrections_accuracy": "held-back corrections"}
    for key, label in names.items():
        if key in before:
            print(f"{label:<32}{100 * before[key]:>9.2f}%{100 * after[key]:>9.2f}%")


# ---------------------------------------------------------------- blend


def _weights(value: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(w) for w in value.split(",") if w.strip())
    except ValueError:
        raise CLIError(f"--weights: expected numbers like 0.6,0.7,0.8, got {value!r}") from None
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise CLIError(f"--weights: each weight is a share of the fine-tuned model, 0 to 1; got {value!r}")
    return weights


def cmd_blend(args: argparse.Namespace) -> int:
    """Fine-tuning's last step: step back towards the base model as far as MNIST asks."""
    from draw2digit.artifacts import resolve_model_path

    weights = _weights(args.weights)
    for model in (args.tuned, args.base):  # clear errors before TensorFlow loads
        resolve_model_path(model, ".keras")
    out = Path(args.out)
    _refuse_overwrite(out, args.force)
    from draw2digit.blend import blend

    try:
        card = blend(args.tuned, args.base, out, weights, non_digits=args.non_digits)
    except ValueError as error:
        raise CLIError(str(error)) from None
    print(
        f"Wrote {out}: weight {card['blend']['weight']:.2f}, MNIST test {100 * card['test_accuracy']:.2f} %. "
        f"Next: draw2digit calibrate --model {out}"
    )
    return 0


# ---------------------------------------------------------------- quantize


def cmd_quantize(args: argparse.Namespace) -> int:
    """The same weights stored as int8 for serving; its calibration must be fitted again."""
    from draw2digit.artifacts import resolve_model_path

    source = resolve_model_path(args.model, ".keras").parent  # a clear error before TensorFlow loads
    out = Path(args.out)
    if out.resolve() == source.resolve():
        raise CLIError("--out must be another folder: the float model stays as it is")
    _refuse_overwrite(out, args.force)
    from draw2digit.artifacts import TFLITE_FILE, quantize_folder
    from draw2digit.data import load_split

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


# ---------------------------------------------------------------- calibrate


def _print_budgets(report: dict) -> None:
    rows = report.get("budgets") or []
    if not rows:
        return
    print(
        f"\nThe chosen rule ({report['rule']}) at other budgets (draw2digit calibrate --max-false-rejection "
        "SHARE): a lower one keeps more real digits and rejects fewer non-digits."
    )
    print(
        f"  {'budget':>8}{'pen right, rule on':>20}{'pen rej.':>10}{'MNIST rej.':>12}{'non-digits rej.':>17}"
    )
    for row in rows:
        fr, kept = row["false_rejection"], row["accuracy_kept"]
        mark = "   (this calibration)" if row["max_false_rejection"] == report["max_false_rejection"] else ""
        print(
            f"  {100 * row['max_false_rejection']:>7g}%{100 * kept['pen_heldout_writers']:>19.2f}%"
            f"{100 * fr['pen_heldout_writers']:>9.2f}%{100 * fr['mnist_test']:>11.2f}%"
            f"{100 * row['non_digit_rejection']:>16.1f}%{mark}"
        )


def cmd_calibrate(args: argparse.Namespace) -> int:
    from draw2digit.calibration import CalibrationConfig, run_calibration, save_calibration
    from draw2digit.predictor import Predictor

    if not 0.0 < args.max_false_rejection < 1.0:
        raise CLIError(
            f"--max-false-rejection is a share of real digits between 0 and 1 (0.01 = 1 %), "
            f"not {args.max_false_rejection}"
        )
    predictor = Predictor(args.model)
    config = CalibrationConfig(args.non_digits, args.fit_images, args.max_false_rejection, args.seed)
    report, gaussians = run_calibration(predictor, config)
    folder = Path(args.out) if args.out else predictor.model_path.parent
    if folder.suffix == ".json":  # --out named the file, as it used to
        folder = folder.parent
    folder.mkdir(parents=True, exist_ok=True)
    out = save_calibration(report, gaussians, folder)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ece, n = report["ece"], report["counts"]
    print(
        f"Temperature {report['temperature']:.3f} (fitted on {n['mnist_validation']} MNIST validation images)"
    )
    print(
        f"Expected calibration error: MNIST test {100 * ece['mnist_test_before']:.2f} % before, "
        f"{100 * ece['mnist_test_after']:.2f} % after; held-out pen digits "
        f"{100 * ece['pen_heldout_writers_before']:.2f} % before, "
        f"{100 * ece['pen_heldout_writers_after']:.2f} % after"
    )
    print(
        f"\nRejection rules, each threshold set so at most {100 * args.max_false_rejection:g} % "
        "of MNIST validation digits and of the tuning writers' pen digits are rejected.\n"
        f"Checked on the MNIST test set, {n['pen_heldout_writers']} pen digits of held-out writers, "
        f"and {n['non_digits_check']} non-digits from generators, glyphs, fonts and shapes not used "
        f"to fit ({n['non_digits_fit']} fit-family non-digits choose the rule):"
    )
    print(
        f"  {'rule':<17}{'MNIST rej.':>11}{'pen rej.':>10}{'non-digits rej.':>17}"
        f"{'(fit family)':>14}   by kind"
    )
    for rule, r in report["rules"].items():
        kinds = ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["non_digit_rejection_by_kind"].items())
        mark = " (chosen)" if rule == report["rule"] else ""
        fr = r["false_rejection"]
        print(
            f"  {rule:<17}{100 * fr['mnist_test']:>10.2f}%{100 * fr['pen_heldout_writers']:>9.2f}%"
            f"{100 * r['non_digit_rejection']:>16.1f}%{100 * r['non_digit_rejection_fit']:>13.1f}%"
            f"   {kinds}{mark}"
        )
    passed = [p for p in report["rules"][report["rule"]]["non_digits_passed"] if p["rejected"] < 0.9]
    if passed:
        print("\nNon-digits the chosen rule lets through most (of the test family), and the digit read:")
        for p in passed:
            rate = f"{100 * p['rejected']:>5.0f} % rejected of {p['count']:>4}"
            print(f"  {p['drawing']:<24}{rate}, read as {p['read_as']}")
    _print_budgets(report)
    if report["pen_writers"]["heldout_seen_in_training"]:
        print(
            f"\nNOTE: this model trained on the held-out writers "
            f"{report['pen_writers']['heldout_seen_in_training']}: the pen figures above are not held-out "
            "figures; the same recipe trained without them (--pen-writers fit) gives those."
        )
    print(f"\nWrote {out}")
    return 0


# ---------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from draw2digit import pendigits
    from draw2digit.data import load_split
    from draw2digit.evaluate import (
        compare_with_baseline,
        evaluate_arrays,
        number_accuracy,
        paired_comparison,
        pen_accuracy,
        plot_confusion,
        plot_mistakes,
        plot_per_class,
        redrawn_accuracy,
    )
    from draw2digit.predictor import Predictor

    writers = _writers(args.writers)  # a typo fails before minutes of work
    predictor = Predictor(args.model, backend=args.backend)
    test = load_split("test")
    started = time.perf_counter()
    probs = predictor.probabilities(test.images.astype("float32") / 255.0)
    seconds = time.perf_counter() - started
    report = evaluate_arrays(probs, test.labels)
    result: dict = {
        "model": str(predictor.model_path),
        "backend": args.backend,
        "accuracy": report.accuracy,
        "errors": report.errors,
        "per_class_accuracy": report.per_class_accuracy,
        "confusion": report.confusion.tolist(),
        "seconds": round(seconds, 2),
    }
    if args.redrawn:
        result["redrawn"] = redrawn_accuracy(
            predictor, test.images, test.labels, count=args.redrawn, ablation=args.ablation, tilt=args.tilt
        )
    baseline = Predictor(args.baseline) if args.baseline else None
    if baseline is not None:
        from draw2digit.feedback import FeedbackStore

        result["baseline"] = compare_with_baseline(
            predictor, baseline, test, FeedbackStore(args.corrections).load()
        )
    if args.pen or args.numbers:
        pen = pendigits.by_writers(pendigits.load_pendigits(), writers)
    seen = pendigits.seen_in_training(predictor.card, writers)
    if args.pen or (args.numbers and args.numbers_from != "mnist"):
        result["pen_writers_seen_in_training"] = seen
    if args.pen:
        pen_report = pen_accuracy(predictor, pen, seed=args.seed)
        result["pen"] = pen_report.to_dict()
        if baseline is not None:  # the same drawings, so the two figures compare drawing by drawing
            baseline_pen = pen_accuracy(baseline, pen, seed=args.seed)
            result["pen_baseline"] = paired_comparison(pen_report, baseline_pen)
    if args.numbers:
        if args.numbers_from == "mnist":
            result["numbers"] = number_accuracy(predictor, test.images, test.labels, count=args.numbers)
        else:
            result["numbers"] = number_accuracy(
                predictor,
                pen,
                [d.label for d in pen],
                count=args.numbers,
                seed=args.seed,
                compose=pendigits.compose_number,
            )
    if args.figures:
        fig_dir = Path(args.figures)
        fig_dir.mkdir(parents=True, exist_ok=True)
        result["figures"] = [
            str(plot_confusion(report, fig_dir / "confusion_matrix.png")),
            str(plot_per_class(report, fig_dir / "per_class_accuracy.png")),
            str(plot_mistakes(test.images, report, fig_dir / "worst_mistakes.png")),
        ]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Model: {predictor.model_path} ({args.backend}), scored in {seconds:.1f} s\n")
    if result.get("pen_writers_seen_in_training"):
        print(
            f"NOTE: this model trained on writers {seen}: their figures below are not held-out figures. "
            "Measure the same recipe trained without them (--pen-writers fit) for those.\n"
        )
    if args.pen:
        print(pen_report.table())
        print("\nMNIST test set")
    print(report.table())
    if args.redrawn:
        r = result["redrawn"]
        tilted = f", tilted up to {args.tilt:g} degrees" if args.tilt else ""
        print(f"\nRe-drawn test digits (random size, place, pen, polarity{tilted}), {r['count']} drawings,")
        print("top digit right:")
        print(f"  {'this pipeline':<28} {100 * r['accuracy']:6.2f} %")
        for name, acc in r.items():
            if name not in ("count", "accuracy", "blank", "rejected", "accepted_accuracy"):
                print(f"  {name:<28} {100 * acc:6.2f} %")
        print(
            f"  called not a digit: {r['rejected']}; right with those counted wrong: "
            f"{100 * r['accepted_accuracy']:.2f} %"
        )
    if args.baseline:
        print(f"\nAgainst the baseline {args.baseline} (before) — this model is after:")
        _print_before_after(result["baseline"]["before"], result["baseline"]["after"])
        if args.pen:
            c = result["pen_baseline"]
            chance = ": could well be chance" if c["p_value"] >= 0.05 else ""
            print(
                f"{'held-out pen digits, rule on':<32}{100 * c['before_accuracy']:>9.2f}%"
                f"{100 * c['after_accuracy']:>9.2f}%\n"
                f"  of the same drawings, {c['gained']} read right only after and {c['lost']} only before "
                f"(exact McNemar p = {c['p_value']:.2g}{chance})"
            )
    if args.numbers:
        source = "MNIST test digits" if args.numbers_from == "mnist" else "held-out writers' pen digits"
        print(f"\nNumbers of {source} written side by side (number mode), {args.numbers} per length:")
        for n, r in result["numbers"].items():
            print(
                f"  {n} digits: {100 * r['sequence_accuracy']:6.2f} % read exactly "
                f"(digit count right: {100 * r['digit_count_correct']:.1f} %)"
            )
    for f in result.get("figures", []):
        print(f"Wrote {f}")
    return 0


def _non_negative_int(text: str) -> int:
    """An argparse type: a readable usage error for "-3" or "soon" instead of a traceback later."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, not {value}")
    return value


def _writers(text: str, option: str = "--writers") -> tuple[int, ...]:
    """``heldout`` (default), ``tuning``, ``fit``, ``all`` or a comma-separated list of writer numbers."""
    from draw2digit import pendigits

    named = {
        "heldout": pendigits.HELDOUT_WRITERS,
        "tuning": pendigits.TUNE_WRITERS,
        "fit": pendigits.FIT_WRITERS,
        "all": pendigits.WRITERS,
    }
    if text in named:
        return named[text]
    try:
        writers = tuple(int(w) for w in text.split(","))
    except ValueError:
        names = "heldout, tuning, fit, all"
        raise CLIError(f"{option} takes {names} or numbers like 5,7,14, not {text!r}") from None
    if not writers or not set(writers) <= set(pendigits.WRITERS):
        raise CLIError(f"{option}: writers are numbered {pendigits.WRITERS[0]} to {pendigits.WRITERS[-1]}")
    return writers


# ---------------------------------------------------------------- predict


def cmd_predict(args: argparse.Namespace) -> int:
    from draw2digit.decode import PreprocessError
    from draw2digit.predictor import Predictor

    predictor = Predictor(args.model)
    failures = 0
    rows = []
    for name in args.files:
        path = Path(name)
        try:
            if not path.exists():
                raise PreprocessError("no such file")
            if path.is_dir():
                raise PreprocessError("is a directory, not an image")
            pred = predictor.predict(path)
        except PreprocessError as exc:
            failures += 1
            print(f"draw2digit: error: {name}: {exc}", file=sys.stderr)
            continue
        if args.json:
            rows.append({"file": name, **pred.to_dict()})
        elif pred.blank:
            print(f"{name}: blank (nothing drawn)")
        else:
            print(f"{name}: {pred.digit} ({100 * pred.confidence:.1f} %)")
    if args.json:
        print(json.dumps(rows, indent=2))
    return EXIT_USAGE if failures else 0


# ---------------------------------------------------------------- bench


def cmd_bench(args: argparse.Namespace) -> int:
    import numpy as np

    from draw2digit.bench import benchmark

    report = benchmark(args.model, args.runs, args.compare_keras)
    print(f"Model {report.model} loaded in {report.load_ms:.0f} ms; 280x280 canvas PNGs, {report.runs} runs")
    for label, ms in report.latency.items():
        print(f"{label:<44} p50 {np.median(ms):7.3f} ms   p99 {np.percentile(ms, 99):7.3f} ms")
    print(f"{'inference, batch 64':<44} {report.batch64_images_per_s:,.0f} images/s")
    return 0


# ---------------------------------------------------------------- publish


def cmd_publish(args: argparse.Namespace) -> int:
    """The retraining job's last step: a candidate goes into service only if it is not worse."""
    from draw2digit.artifacts import CURRENT, publish, read_model_card, resolve_model_path

    resolve_model_path(args.candidate)  # a clear error for a folder without a model
    root = Path(args.into)
    current = root / CURRENT
    if args.if_empty and current.exists():
        print(f"{current} exists ({read_model_card(current).get('version')}): nothing to do")
        return 0
    if current.exists() and not args.if_empty:
        from draw2digit.data import load_split
        from draw2digit.evaluate import compare_with_baseline, not_worse
        from draw2digit.feedback import FeedbackStore
        from draw2digit.predictor import Predictor

        comparison = compare_with_baseline(
            Predictor(args.candidate),
            Predictor(current),
            load_split("test"),
            FeedbackStore(args.corrections).load(),
        )
        ok, why = not_worse(comparison, args.tolerance)
        if not ok:
            print(f"not published: {why}")
            return EXIT_NOT_PUBLISHED
        print(f"not worse than the model in service: {why}")
    target = publish(args.candidate, root)
    print(f"published {target} as {current}")
    return 0


# ---------------------------------------------------------------- db


def cmd_db(args: argparse.Namespace) -> int:
    """Schema upgrades and pruning run as jobs (a deployment step, a cron), never on a request."""
    from draw2digit import db
    from draw2digit.feedback import FeedbackStore

    store = FeedbackStore(args.url)
    engine = store.engine()  # connects and brings the schema up to date
    if args.action == "prune":
        if args.keep < 0:
            raise CLIError("--keep must be 0 or more")
        print(f"{store}: deleted {store.prune(args.keep)} old corrections, {store.count()} kept")
    else:
        print(f"{store}: schema at revision {db.current_revision(engine)}, {store.count()} corrections")
    return 0


# ---------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    """Waitress threads in one process, or ``--workers N`` gunicorn processes (each loads the model once)."""
    import logging

    from draw2digit_app import create_app
    from draw2digit_app.server import serve_gunicorn, serve_waitress, trust_proxies

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(message)s")
    if args.workers < 1 or args.threads < 1:
        raise CLIError("--workers and --threads must be at least 1")
    config: dict = {"LOG_REQUESTS": True}
    if args.model:
        config["MODEL"] = args.model
    if args.log_json:
        config["LOG_FORMAT"] = "json"
    if args.trusted_proxies is not None:
        config["TRUSTED_PROXIES"] = args.trusted_proxies
    url = f"http://{args.host}:{args.port}/"
    threads = args.threads
    if args.workers > 1:
        try:
            import gunicorn  # noqa: F401
        except ImportError:  # e.g. on Windows: one process with as many threads instead
            threads = args.workers * args.threads
            print(f"note: gunicorn is not installed; one process with {threads} threads instead", flush=True)
        else:
            print(f"Draw2Digit: {args.workers} processes x {args.threads} threads on {url}", flush=True)
            serve_gunicorn(config, args.host, args.port, args.workers, args.threads)
            return 0
    started = time.perf_counter()
    app = create_app(config)
    if args.debug:
        print(f"Flask development server (debug) on {url}", flush=True)
        app.run(host=args.host, port=args.port, debug=True, use_reloader=False)
        return 0
    trust_proxies(app, int(app.config["TRUSTED_PROXIES"]))
    print(f"Draw2Digit ready in {time.perf_counter() - started:.1f} s on {url} (Ctrl+C to stop)", flush=True)
    try:
        serve_waitress(app, args.host, args.port, threads)
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    return 0


# ---------------------------------------------------------------- voila

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def cmd_voila(args: argparse.Namespace) -> int:
    import shutil
    import subprocess

    notebook = Path(args.notebook) if args.notebook else NOTEBOOKS / "03_draw.ipynb"
    if not notebook.is_file():
        raise CLIError(f"no notebook at {notebook}")
    exe = shutil.which("voila", path=str(Path(sys.executable).parent)) or shutil.which("voila")
    if exe is None:
        raise CLIError("voila is not installed: pip install 'draw2digit[notebooks]'")
    cmd = [
        exe,
        notebook.name,
        f"--port={args.port}",
        "--Voila.ip=127.0.0.1" if args.host == "127.0.0.1" else f"--Voila.ip={args.host}",
        "--no-browser",
        "--strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
    ]
    if args.cull_idle:  # a closed page (or a bare GET, a probe) leaves a kernel no page talks to
        interval = max(1, min(60, args.cull_idle // 2))
        cmd += [
            f"--MappingKernelManager.cull_idle_timeout={args.cull_idle}",
            f"--MappingKernelManager.cull_interval={interval}",
        ]
    if args.preheat:  # kernels started ahead, each running the notebook: a visitor gets a ready one
        cmd += ["--preheat_kernel=True", f"--pool_size={args.preheat}"]
    print(f"Voila app on http://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    return run_until_stopped(subprocess.Popen(cmd, cwd=notebook.parent))


def run_until_stopped(proc, grace: float = 10.0) -> int:
    """Wait for ``proc``; on Ctrl+C or SIGTERM stop it *and everything it started*, then return.

    Voila leaves its kernels running when it is terminated, so they are found
    (while they still have a parent) and stopped too: nothing outlives the command.
    """
    import signal

    import psutil

    def stop(signum, _frame):
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Ctrl+C must still stop everything
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except Exception:
            proc.kill()
        for child in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.terminate()
        _, alive = psutil.wait_procs(family, timeout=grace)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    from draw2digit.calibration import CalibrationConfig
    from draw2digit.evaluate import NOT_WORSE_TOLERANCE
    from draw2digit.train import FinetuneConfig, TrainConfig  # no TensorFlow: imported when training

    train_defaults, finetune_defaults, calibrate_defaults = (
        TrainConfig(),
        FinetuneConfig(),
        CalibrationConfig(),
    )
    parser = argparse.ArgumentParser(
        prog="draw2digit",
        description="Read hand-drawn digits with a CNN trained on MNIST.",
        epilog="MNIST is read from $DRAW2DIGIT_DATA_DIR, else the user cache (downloaded when missing).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_help = "model folder or file (default: $DRAW2DIGIT_MODEL, else the shipped models/)"
    corrections_help = (
        "corrections database: a URL (postgresql+psycopg://...) or an SQLite file "
        "(default $DRAW2DIGIT_DATABASE_URL, else $DRAW2DIGIT_FEEDBACK_DB)"
    )

    p = sub.add_parser("train", help="train the CNN and write model, model card and plots")
    p.add_argument("--out", help="output folder (default: runs/train-<time>)")
    p.add_argument("--epochs", type=int, default=train_defaults.epochs, help="epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=train_defaults.batch_size)
    p.add_argument(
        "--learning-rate", type=float, default=train_defaults.learning_rate, help="peak rate (cosine decay)"
    )
    p.add_argument(
        "--width", type=int, default=train_defaults.width, help="filters in the first block (%(default)s)"
    )
    p.add_argument("--limit", type=int, help="train on only N images (a quick try)")
    p.add_argument("--no-augment", action="store_true", help="train without random affine augmentation")
    p.add_argument(
        "--elastic",
        type=float,
        default=train_defaults.elastic,
        metavar="ALPHA",
        help="also bend strokes by a smooth random field this strong "
        "(default off; 30 read worse: docs/real-drawings.md)",
    )
    p.add_argument(
        "--warmup-epochs", type=float, default=train_defaults.warmup_epochs, help="linear warm-up first"
    )
    p.add_argument(
        "--pen-copies",
        type=int,
        default=0,
        metavar="N",
        help="add N augmented drawings of each real pen digit",
    )
    p.add_argument(
        "--pen-writers",
        metavar="WHO",
        help="whose pen digits: fit (default, 16 writers), all (30: the model to ship, then no writer is "
        "held out) or writer numbers like 1,2,3",
    )
    p.add_argument(
        "--pen-perturb",
        type=float,
        default=train_defaults.pen_perturb,
        metavar="S",
        help="how far each pen copy's strokes are bent and jittered (pendigits.perturb; default %(default)s, "
        "0 = the writer's own trace, only resampled)",
    )
    p.add_argument(
        "--pen-morph",
        type=float,
        default=train_defaults.pen_morph,
        metavar="SHARE",
        help="share of the pen copies first moved part of the way towards the same digit by another "
        "training writer (pendigits.morph; default %(default)s; measured: no gain on new writers)",
    )
    p.add_argument(
        "--cut-pieces",
        type=int,
        default=0,
        metavar="N",
        help="also write N touching pairs of the pen digits, cut where the number reader cuts, and learn "
        "each piece that holds most of one digit as that digit (pendigits.render_cut_pieces)",
    )
    p.add_argument(
        "--mnist-class-weights",
        type=_class_weights,
        default=(),
        metavar="D:W,...",
        help="MNIST training images of these digits count W times in the loss, like 7:3,9:3 (default: 1)",
    )
    p.add_argument(
        "--style-coverage",
        action="store_true",
        help="also write pen 1s with a foot or flag, 7s with a crossbar, steep slants (pendigits.restyle)",
    )
    p.add_argument(
        "--non-digits",
        type=int,
        default=0,
        metavar="N",
        help='add N drawings of an 11th class, "not a digit"',
    )
    p.add_argument(
        "--scribble-crossings",
        type=int,
        default=0,
        metavar="K",
        help="only scribbles that cross themselves K times or more among the non-digits "
        "(a path crossing itself once or never is often a fair digit; 3 measured in docs/real-drawings.md)",
    )
    p.add_argument(
        "--extra-shapes",
        action="store_true",
        help="the non-digits also include rings with marks, targets, suns, houses and waves "
        "(default off; measured in docs/real-drawings.md)",
    )
    p.add_argument(
        "--outlier-loss",
        choices=("class", "uniform"),
        default=train_defaults.outlier_loss,
        help='how the non-digits are learned: an 11th class "not a digit" (default), or uniform: '
        "ten classes, each non-digit taught a flat answer (outlier exposure as Hendrycks et al. 2019; "
        "the rule then rests on confidence; measured in docs/real-drawings.md)",
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from this model's weights (fine-tune); a narrower one is widened to --width first",
    )
    p.add_argument(
        "--distill-from", metavar="MODEL", help="keep MNIST answers close to this model's (no forgetting)"
    )
    p.add_argument(
        "--distill-weight",
        type=float,
        default=train_defaults.distill_weight,
        metavar="W",
        help="share of the teacher's answers in MNIST targets, 0 to 1 (default %(default)s)",
    )
    p.add_argument(
        "--quantize",
        action="store_true",
        help="serve int8 weights: inference several times faster on a CPU, a few drawings apart (README)",
    )
    p.add_argument("--seed", type=int, default=train_defaults.seed)
    p.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("quantize", help="a copy of a model folder serving int8 weights (then calibrate it)")
    p.add_argument("model", help="model folder with model.keras, e.g. models/ or runs/full")
    p.add_argument("--out", required=True, help="where to write the quantized copy")
    p.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("evaluate", help="accuracy, per-class accuracy, confusion matrix, worst mistakes")
    p.add_argument("--model", help=model_help)
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
        "--numbers", type=int, default=0, metavar="N", help="also score N composed numbers per length"
    )
    p.add_argument(
        "--numbers-from", choices=["pen", "mnist"], default="pen", help="digits for --numbers (default: pen)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the drawings' styles (default 0)")
    p.add_argument(
        "--baseline",
        metavar="MODEL",
        help="also score this model (e.g. the one fine-tuned from); with --pen, drawing by drawing",
    )
    p.add_argument("--corrections", metavar="DB", help=corrections_help)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("calibrate", help="fit the confidence temperature and the not-a-digit rule")
    p.add_argument("--model", help=model_help)
    p.add_argument("--out", help="where to write calibration.json (default: beside the model)")
    c = calibrate_defaults
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

    p = sub.add_parser("finetune", help="fine-tune a model on MNIST plus the stored corrections")
    p.add_argument("--model", help=model_help)
    p.add_argument("--corrections", metavar="DB", help=corrections_help)
    p.add_argument("--out", help="output folder (default: runs/finetune-<time>)")
    p.add_argument("--epochs", type=int, default=finetune_defaults.epochs)
    p.add_argument("--learning-rate", type=float, default=finetune_defaults.learning_rate)
    p.add_argument(
        "--mnist-limit", type=int, metavar="N", help="use only N MNIST training images (quick try)"
    )
    p.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    p.add_argument("--quiet", action="store_true", help="one line per epoch")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("blend", help="average a fine-tuned model with its base, weight chosen on tuning sets")
    p.add_argument("tuned", help="the fine-tuned model folder, e.g. runs/full")
    p.add_argument("--base", required=True, help="the model it was fine-tuned from, e.g. models/mnist-only")
    p.add_argument("--out", required=True, help="where to write the blended model")
    p.add_argument(
        "--weights",
        default="0.5,0.6,0.7,0.8,0.9",
        help="shares of the fine-tuned model to try (default %(default)s); one value fixes it",
    )
    p.add_argument("--non-digits", type=int, default=1500, metavar="N", help="fit-family non-digits to score")
    p.add_argument("--force", action="store_true", help="overwrite a model already in --out")
    p.set_defaults(func=cmd_blend)

    p = sub.add_parser("publish", help="put a model into service if it is not worse than the one there")
    p.add_argument("candidate", help="model folder, e.g. what `draw2digit finetune` wrote")
    p.add_argument("--into", required=True, metavar="DIR", help="models folder whose `current` servers read")
    p.add_argument("--corrections", metavar="DB", help=corrections_help)
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

    from draw2digit.feedback import MAX_ROWS

    p = sub.add_parser("db", help="the corrections database: migrate it, keep it bounded, show its state")
    p.add_argument(
        "action",
        choices=["upgrade", "prune", "status"],
        help="upgrade to the latest schema, prune, or status",
    )
    p.add_argument("--url", metavar="DB", help=corrections_help)
    p.add_argument(
        "--keep", type=int, default=MAX_ROWS, help=f"prune: newest corrections kept (default {MAX_ROWS})"
    )
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("predict", help="read the digit in each image file")
    p.add_argument("files", nargs="+", metavar="FILE", help="PNG, JPEG, WebP, BMP or GIF")
    p.add_argument("--model", help=model_help)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="latency and throughput of preprocessing + inference")
    p.add_argument("--model", help=model_help)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--compare-keras", action="store_true", help="also time Keras predict/call/tf.function")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="serve the drawing page and JSON API (waitress, or gunicorn workers)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")

    # Containers and platforms set these through the environment (PORT is the usual convention);
    # argparse converts a text default with `type`, so a bad value is a clear usage error.
    def env_int(name: str, default: int) -> str:
        return os.environ.get(name) or str(default)

    p.add_argument("--port", type=int, default=env_int("PORT", 5000), help="port (default $PORT, else 5000)")
    p.add_argument(
        "--workers",
        type=int,
        default=env_int("DRAW2DIGIT_WORKERS", 1),
        help="processes (default $DRAW2DIGIT_WORKERS, else 1: waitress; more: gunicorn, one model each)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=env_int("DRAW2DIGIT_THREADS", 8),
        help="threads per process (default $DRAW2DIGIT_THREADS, else 8)",
    )
    p.add_argument(
        "--trusted-proxies",
        type=int,
        metavar="N",
        help="honour X-Forwarded-* from N reverse proxies in front (default 0: ignored)",
    )
    p.add_argument("--log-json", action="store_true", help="one JSON object per request log line")
    p.add_argument("--model", help=model_help)
    p.add_argument("--debug", action="store_true", help="Flask's development server with the debugger")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("voila", help="serve the drawing notebook as a standalone app (Voila)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--notebook", help="notebook to serve (default notebooks/03_draw.ipynb)")
    p.add_argument(
        "--preheat",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="keep N kernels started ahead for new visitors",
    )
    p.add_argument(
        "--cull-idle",
        type=_non_negative_int,
        default=600,
        metavar="SECONDS",
        help="stop a kernel no open page is connected to after SECONDS idle (default 600; 0: never). "
        "Kernels of open pages and preheated ones are kept",
    )
    p.set_defaults(func=cmd_voila)
    return parser


#: Modules that only an extra installs: the serving install lacks them, and a command needing one says which.
EXTRA_FOR = {
    "tensorflow": "train",
    "keras": "train",
    "matplotlib": "train",
    "tqdm": "train",
    "voila": "notebooks",
}


def main(argv: list[str] | None = None) -> int:
    from draw2digit.artifacts import ModelNotFoundError
    from draw2digit.data import DataError
    from draw2digit.decode import PreprocessError
    from draw2digit.feedback import StoreUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, DataError, ModelNotFoundError, PreprocessError, StoreUnavailable) as exc:
        print(f"draw2digit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing in EXTRA_FOR:
            print(
                f"draw2digit: error: `draw2digit {args.command}` needs {missing}, which this install "
                f"does not have: pip install 'draw2digit[{EXTRA_FOR[missing]}]'",
                file=sys.stderr,
            )
            return EXIT_USAGE
        raise
    except KeyboardInterrupt:
        print("draw2digit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
