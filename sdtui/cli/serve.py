"""`sdtui serve`: one process owns the engine and a job queue that every client shares.

Speaks sdtui's own API, the AUTOMATIC1111 API subset and Hugging Face's
text-to-image protocol (docs/SERVER.md). Listens on loopback unless told
otherwise; any other address needs a token. With `--ray` the jobs run on a Ray
Serve deployment, one replica per GPU, with the same HTTP API (docs/RAY.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdtui.cli import common
from sdtui.engine import performance
from sdtui.errors import SdtuiError, ValidationError

if TYPE_CHECKING:
    from sdtui.server.ray_backend import RaySettings


class RayMissingError(SdtuiError):
    """`--ray` without Ray installed."""

    exit_code = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="clients must send the token in this file (created, mode 0600, when missing); "
        "required off loopback, default then: <config>/server-token",
    )
    common.add_model_arguments(parser)
    parser.add_argument(
        "--max-queue", type=int, default=64, metavar="N", help="jobs waiting at most (default 64)"
    )
    parser.add_argument(
        "--max-per-client", type=int, default=16, metavar="N",
        help="jobs one client may have waiting (default 16)",
    )
    parser.add_argument(
        "--max-prompt-chars", type=int, default=4000, metavar="N",
        help="longest prompt accepted (default 4000)",
    )
    parser.add_argument(
        "--keep-minutes", type=float, default=10.0, metavar="M",
        help="finished jobs stay readable this long for clients that lost the line (default 10)",
    )
    performance.add_performance_arguments(parser)
    ray = parser.add_argument_group("Ray Serve (many GPUs, many machines; docs/RAY.md)")
    ray.add_argument(
        "--ray", action="store_true",
        help="run the jobs on a Ray Serve deployment, one replica per GPU "
        "(needs: pip install 'sdtui[ray]')",
    )
    ray.add_argument(
        "--ray-address", metavar="ADDR",
        help="an existing Ray cluster (e.g. auto, or HEAD:6379); default: start Ray here",
    )
    ray.add_argument(
        "--replicas", type=int, metavar="N",
        help="a fixed number of replicas (default: one per GPU)",
    )
    ray.add_argument(
        "--min-replicas", type=int, metavar="A", help="autoscale from A replicas (default 1) ..."
    )
    ray.add_argument(
        "--max-replicas", type=int, metavar="B",
        help="... up to B on the jobs waiting (default: one per GPU)",
    )
    ray.add_argument(
        "--ray-gpus-per-replica", type=float, default=1.0, metavar="G",
        help="GPUs each replica holds (default 1; 0 runs the replicas on CPU)",
    )


def _say(text: str) -> None:
    print(f"sdtui serve: {text}", file=sys.stderr, flush=True)


def _token(args: argparse.Namespace) -> str | None:
    from sdtui.config import config_dir, ensure_private_dir
    from sdtui.server.auth import is_loopback, load_or_create_token

    if args.token_file:
        path = Path(args.token_file).expanduser()
    elif not is_loopback(args.host):
        path = ensure_private_dir(config_dir()) / "server-token"
    else:
        return None
    token, created = load_or_create_token(path)
    _say(f"clients need the token {'written to' if created else 'in'} {path}")
    return token


def run(args: argparse.Namespace) -> int:
    from sdtui.cli.generate import _quiet_libraries

    if not 0 <= args.port <= 65535:
        raise ValidationError("port", f"must be from 0 to 65535, got {args.port}")
    for name in ("max_queue", "max_per_client", "max_prompt_chars"):
        if getattr(args, name) < 1:
            raise ValidationError(name.replace("_", "-"), "must be at least 1")
    ray_only = ("ray_address", "replicas", "min_replicas", "max_replicas")
    given = [name for name in ray_only if getattr(args, name) is not None]
    if given and not args.ray:
        raise ValidationError("--" + given[0].replace("_", "-"), "needs --ray")
    ray_settings = _ray_settings(args) if args.ray else None
    settings = common.settings_from_args(args)
    options = performance.performance_from_settings(settings, args)
    token = _token(args)
    from sdtui.server.run import listen

    sock = listen(args.host, args.port)  # a port in use fails before the model loads
    _quiet_libraries()
    if ray_settings is not None:
        return _run_on_ray(args, ray_settings, settings, options, token, sock)
    from sdtui.engine import Engine
    from sdtui.server.common import ServerConfig
    from sdtui.server.run import serve
    from sdtui.service import EngineService

    engine = Engine(
        device=settings.device,
        dtype=settings.dtype,
        allow_pickle=settings.allow_pickle,
        performance=options,
    )
    loaded = engine.load(settings.model, on_status=_say)
    service = EngineService(
        engine,
        models=(settings.model,),
        max_queue=args.max_queue,
        max_per_owner=args.max_per_client,
        keep_seconds=args.keep_minutes * 60,
    )
    config = ServerConfig(
        model=settings.model,
        token=token,
        max_prompt_chars=args.max_prompt_chars,
        aliases=(loaded.model_id,),
    )
    serve(service, config, sock, on_ready=lambda url: _say(f"listening on {url}"))
    _say("stopped")
    return 0


def _ray_settings(args: argparse.Namespace) -> RaySettings:
    """The Ray flags, checked before anything starts (exit 2 on a bad count)."""
    if importlib.util.find_spec("ray") is None:
        raise RayMissingError(
            "--ray needs Ray Serve, which is not installed", "pip install 'sdtui[ray]'"
        )
    from sdtui.server.ray_backend import RaySettings

    return RaySettings(
        address=args.ray_address,
        replicas=args.replicas,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        gpus_per_replica=args.ray_gpus_per_replica,
    )


def _run_on_ray(
    args: argparse.Namespace,
    ray_settings: RaySettings,
    settings: Any,
    options: Any,
    token: str | None,
    sock: socket.socket,
) -> int:
    """The same server, its jobs run by the replicas of a Ray Serve deployment."""
    from sdtui.server.common import ServerConfig
    from sdtui.server.ray_backend import RayDeployment
    from sdtui.server.ray_replica import EngineOptions
    from sdtui.server.run import serve

    engine = EngineOptions(
        device=settings.device,
        dtype=settings.dtype,
        allow_pickle=settings.allow_pickle,
        performance=options,
    )
    deployment = RayDeployment(ray_settings, engine, settings.model)
    deployment.start(on_status=_say)
    try:
        service = deployment.queue(
            max_queue=args.max_queue,
            max_per_owner=args.max_per_client,
            keep_seconds=args.keep_minutes * 60,
        )
        loaded = deployment.loaded
        config = ServerConfig(
            model=settings.model,
            token=token,
            max_prompt_chars=args.max_prompt_chars,
            aliases=(loaded.model_id,) if loaded is not None else (),
        )
        low, high = deployment.scale
        scale = f"{low}" if low == high else f"{low} to {high}"
        _say(f"Ray Serve is up in {deployment.startup_seconds:.1f} s with {scale} replica(s)")
        serve(service, config, sock, on_ready=lambda url: _say(f"listening on {url}"))
    finally:
        deployment.close()
    _say("stopped")
    return 0
