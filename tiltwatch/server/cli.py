"""Running the server: :func:`serve` (what ``tiltwatch serve`` calls) and its typer command.

Usage::

    serve(port=8000, site="site.yaml", db="sqlite:///floor.db", allow_frames=True)   # Python
    python -m tiltwatch.server --site site.yaml --allow-frames                       # shell
    tiltwatch serve --stream table-7=rtsp://cam-7/stream --site site.yaml            # (main CLI)

SIGINT / SIGTERM stop it cleanly: live views end, streams and jobs stop, open visits and
alerts are closed and stored, the store is flushed and closed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import typer

from ..cli_settings import AnalyzerChoice, analyzer_flags
from ..errors import ConfigError, TiltwatchError

SAMPLE_ID = "sample"
CLUSTER = "Cluster (--cluster)"


def _stream_specs(streams: list[str], sample: bool | None, site_path: Path | None, loop: bool) -> list:
    from ..analytics.site import load_site
    from .settings import StreamSpec

    site = load_site(site_path) if site_path is not None else None
    cameras = {c.id for c in site.cameras} if site is not None else set()
    specs = []
    for item in streams:
        stream_id, sep, source = item.partition("=")
        if not sep or not stream_id or not source:
            raise ConfigError(f"--stream must be ID=SOURCE (e.g. table-7=rtsp://cam-7/stream), got {item!r}")
        specs.append(
            StreamSpec(id=stream_id, source=source, camera=stream_id if stream_id in cameras else None, loop=loop)
        )
    if sample or (sample is None and not specs):
        specs.append(
            StreamSpec(id=SAMPLE_ID, source="sample", loop=True, camera=SAMPLE_ID if SAMPLE_ID in cameras else None)
        )
    for spec in specs:
        if site is not None:
            site.camera(spec.camera)  # a site with several cameras: ConfigError names them
    return specs


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    db: str = "sqlite:///tiltwatch.db",
    site: Path | None = None,
    allow_frames: bool = False,
    blur: bool = False,
    api_key_file: Path | None = None,
    sample: bool | None = None,
    streams: tuple[str, ...] | list[str] = (),
    loop: bool = True,
    data_dir: Path = Path("tiltwatch-data"),
    cors_origins: tuple[str, ...] | list[str] = (),
    rate_limit: int = 120,
    media_dir: Path | None = None,
    trusted_proxies: tuple[str, ...] | list[str] = (),
    analyzer=None,
    cluster=None,
) -> None:
    """Run the API and dashboard until SIGINT/SIGTERM. ``sample=None``: the sample plays when no stream is given.

    ``analyzer``: the :class:`~tiltwatch.config.AnalyzerConfig` of streams and jobs (default: the
    ``fast`` preset). ``cluster``: a :class:`~tiltwatch.cluster.control.ClusterOptions`: the streams
    run as camera actors on that Ray cluster. Raises :class:`ConfigError` (one line) for a bad site
    config, key file, stream or cluster setting."""
    from pydantic import ValidationError

    from .app import create_app
    from .auth import install_log_masking
    from .readers import check_source
    from .settings import Settings, validation_message

    try:
        kwargs = {"api_key_file": api_key_file} if api_key_file is not None else {}
        settings = Settings(
            db=db,
            site=site,
            allow_frames=allow_frames,
            blur_faces=blur,
            data_dir=data_dir,
            cors_origins=list(cors_origins),
            rate_limit=rate_limit,
            media_dir=media_dir,
            trusted_proxies=list(trusted_proxies),
            streams=_stream_specs(list(streams), sample, site, loop),
            **kwargs | ({"analyzer": analyzer} if analyzer is not None else {}),
        )
    except ValidationError as exc:
        raise ConfigError(validation_message(list(exc.errors()))) from None
    for spec in settings.streams:
        check_source(spec.source)  # a missing file fails here, in one line, before anything starts
    if cluster is not None:
        from ..cluster import require_ray
        from ..cluster.control import shared_store_url

        cluster.check()
        shared_store_url(db)  # (an SQLite database in memory cannot be shared)
        require_ray()
    try:
        if cluster is not None:
            cluster.start_local()  # local:N (here: Ray's nodes want the main thread)
        app = create_app(settings, cluster=cluster)
        config = uvicorn_config(app, host, port)
        install_log_masking()  # after uvicorn configured its loggers
        server = _make_server(config, app.state.server.closing)
        print(f"dashboard: http://{host}:{port}/", flush=True)
        server.run()
    finally:
        if cluster is not None:
            cluster.stop_local()  # (normally done at shutdown, cameras first)


def uvicorn_config(app, host: str, port: int):
    """uvicorn's settings for ``app``. Its own ``X-Forwarded-For`` handling is off (by default it
    believes any loopback peer, so a local client could pick its rate-limit bucket): the app reads
    forwarded addresses itself, from its ``trusted_proxies`` only."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=False,
        forwarded_allow_ips=[],
    )


def _make_server(config, closing: threading.Event):
    """A uvicorn server that sets ``closing`` on SIGINT/SIGTERM, before it waits for open connections:
    MJPEG streams and WebSockets then end at once instead of holding the shutdown up."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            closing.set()
            super().handle_exit(sig, frame)

    return Server(config)


CLUSTER_OPTIONS = {  # serve's cluster flags
    "cluster": typer.Option(
        None,
        help="run the streams as camera actors on this Ray cluster (HOST:PORT, ray://HOST:10001, auto; "
        "the 'cluster' extra): they outlive this server, which adopts them when it starts again; "
        "local:N starts N nodes on this machine (and a head that runs none) for trying it",
        rich_help_panel=CLUSTER,
    ),
    "camera_cpus": typer.Option(1.0, min=0, help="logical CPUs Ray reserves per camera", rich_help_panel=CLUSTER),
    "camera_memory": typer.Option(
        None, min=1, help="memory (MB) Ray reserves per camera (scheduling only)", rich_help_panel=CLUSTER
    ),
    "cameras_per_node": typer.Option(
        None,
        min=1,
        help="local:N: cameras a node takes (default 4); a real cluster: each camera takes one "
        "'tiltwatch_camera' resource, declared per node by ray start --resources (default: no cap)",
        rich_help_panel=CLUSTER,
    ),
    "watchdog": typer.Option(
        15.0, min=0.1, help="a camera that sends no frame for this many seconds is reconnected", rich_help_panel=CLUSTER
    ),
}


def _cluster_options(cluster, camera_cpus, camera_memory, cameras_per_node, watchdog):
    """serve's cluster flags as ClusterOptions (None without --cluster)."""
    if cluster is None:
        return None
    from ..cluster.control import ClusterOptions

    return ClusterOptions(
        cluster,
        num_cpus=camera_cpus,
        memory_mb=camera_memory,
        cameras_per_node=cameras_per_node or 4,
        slots=cluster.strip().startswith("local") or cameras_per_node is not None,
        stall_s=watchdog,
    )


@analyzer_flags()
def serve_command(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, min=1, max=65535, help="port to listen on"),
    db: str = typer.Option("sqlite:///tiltwatch.db", help="the store: sqlite:///file.db or postgresql+psycopg://..."),
    site: Optional[Path] = typer.Option(None, help="site config (YAML): zones, staff zones, alert thresholds"),
    allow_frames: bool = typer.Option(
        False,
        "--allow-frames",
        help="serve annotated frames, MJPEG and videos (default: only numbers leave the server)",
    ),
    blur: bool = typer.Option(False, "--blur", help="pixelate faces in every served frame and video"),
    api_key_file: Optional[Path] = typer.Option(
        None,
        help="API keys, one a line (also: env TILTWATCH_API_KEYS, comma-separated; none: one is generated and printed)",
    ),
    sample: Optional[bool] = typer.Option(
        None, "--sample/--no-sample", help="play the built-in sample as stream 'sample' (default: when no --stream)"
    ),
    stream: list[str] = typer.Option(
        [],
        "--stream",
        help="ID=SOURCE: an rtsp/http URL, a webcam index or a video "
        "file, started at once (repeat); camera = the site "
        "camera named ID, or its only camera",
    ),
    loop: bool = typer.Option(True, "--loop/--no-loop", help="video files given with --stream start again at the end"),
    data_dir: Path = typer.Option(Path("tiltwatch-data"), help="uploaded videos and job results"),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="allow browser calls from this origin (repeat); default: CORS off"
    ),
    rate_limit: int = typer.Option(120, min=0, help="requests per minute per client IP and key (0: off)"),
    media_dir: Optional[Path] = typer.Option(
        None, help="folder whose video files API clients may add as streams (default: none, files only via --stream)"
    ),
    trusted_proxy: list[str] = typer.Option(
        [], "--trusted-proxy", help="reverse proxy address or network whose X-Forwarded-For is believed (repeat)"
    ),
    cluster: Optional[str] = CLUSTER_OPTIONS["cluster"],
    camera_cpus: float = CLUSTER_OPTIONS["camera_cpus"],
    camera_memory: Optional[int] = CLUSTER_OPTIONS["camera_memory"],
    cameras_per_node: Optional[int] = CLUSTER_OPTIONS["cameras_per_node"],
    watchdog: float = CLUSTER_OPTIONS["watchdog"],
    analyzer: AnalyzerChoice = None,
) -> None:
    """Serve the HTTP API and the live dashboard (open http://HOST:PORT/ and enter the API key).

    The analyzer settings apply to streams and video jobs; single images always run the photo preset."""
    try:
        options = _cluster_options(cluster, camera_cpus, camera_memory, cameras_per_node, watchdog)
        serve(
            host,
            port,
            db,
            site,
            allow_frames,
            blur,
            api_key_file,
            sample,
            stream,
            loop,
            data_dir,
            cors_origin,
            rate_limit,
            media_dir,
            trusted_proxy,
            analyzer.config(),
            options,
        )
    except TiltwatchError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
