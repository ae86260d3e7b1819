"""Commands that serve and read: ``serve``, ``voila``, ``predict``, ``db``. No training code here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from draw2digit import db
from draw2digit.cli.common import CORRECTIONS_HELP, EXIT_USAGE, MODEL_HELP, CLIError, non_negative_int
from draw2digit.decode import PreprocessError
from draw2digit.feedback import MAX_ROWS, FeedbackStore
from draw2digit.personal import Personalizer, memory_size
from draw2digit.predictor import Predictor
from draw2digit.processes import run_until_stopped
from draw2digit_app import create_app
from draw2digit_app.resources import STORE
from draw2digit_app.server import serve_gunicorn, serve_waitress, trust_proxies

NOTEBOOKS = Path(__file__).resolve().parent.parent.parent / "notebooks"
DRAWING_NOTEBOOK = "04_draw.ipynb"


def cmd_predict(args: argparse.Namespace) -> int:
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


def cmd_db(args: argparse.Namespace) -> int:
    """Schema upgrades and pruning run as jobs (a deployment step, a cron), never on a request."""
    store = FeedbackStore(args.url)
    engine = store.engine()  # connects and brings the schema up to date
    if args.action == "prune":
        if args.keep < 0:
            raise CLIError("--keep must be 0 or more")
        deleted = store.prune(args.keep)
        print(f"{store}: deleted {deleted} corrections of the clients with the most, {store.count()} kept")
        forgotten = Personalizer(store, model="").prune()
        print(f"deleted {forgotten} remembered drawings beyond {memory_size()} of each kind per person")
    else:
        print(f"{store}: schema at revision {db.current_revision(engine)}, {store.count()} corrections")
        people, rows = Personalizer(store, model="").usage()
        print(f"handwriting memories: {rows} drawings of {people} people")
    if args.action != "upgrade":
        clients = store.clients()
        if clients:
            print(f"rows per client (keyed hash of the address), top ten of {len(clients)}:")
            for client, rows in clients[:10]:
                print(f"  {client:<16} {rows:>7}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Waitress threads in one process, or ``--workers N`` gunicorn processes (each loads the model once)."""
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
            print(f"Draw2Digit: {args.workers} processes x {args.threads} threads on {url}")
            print(f"Corrections are stored in {FeedbackStore()}\n", flush=True)
            serve_gunicorn(config, args.host, args.port, args.workers, args.threads)
            return 0
    started = time.perf_counter()
    app = create_app(config)
    if args.debug:
        print(f"Flask development server (debug) on {url}", flush=True)
        app.run(host=args.host, port=args.port, debug=True, use_reloader=False)
        return 0
    trust_proxies(app, int(app.config["TRUSTED_PROXIES"]))
    print(f"Draw2Digit ready in {time.perf_counter() - started:.1f} s on {url} (Ctrl+C to stop)")
    print(f"Corrections are stored in {app.extensions[STORE]}\n", flush=True)
    try:
        serve_waitress(app, args.host, args.port, threads)
    except OSError as exc:
        raise CLIError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    return 0


def cmd_voila(args: argparse.Namespace) -> int:
    notebook = Path(args.notebook) if args.notebook else NOTEBOOKS / DRAWING_NOTEBOOK
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    model_help, corrections_help = MODEL_HELP, CORRECTIONS_HELP
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
    p.add_argument("--notebook", help="notebook to serve (default notebooks/04_draw.ipynb)")
    p.add_argument(
        "--preheat",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="keep N kernels started ahead for new visitors",
    )
    p.add_argument(
        "--cull-idle",
        type=non_negative_int,
        default=600,
        metavar="SECONDS",
        help="stop a kernel no open page is connected to after SECONDS idle (default 600; 0: never). "
        "Kernels of open pages and preheated ones are kept",
    )
    p.set_defaults(func=cmd_voila)
