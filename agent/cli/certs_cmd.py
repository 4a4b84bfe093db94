"""``greenwave certs …``: DEV/TEST certificates for mutual TLS, and checks for real ones (SPEC §9).

* ``certs init --out DIR [--device ID]… [--broker-host NAME|IP]… [--broker-port N]
  [--days N] [--issuer ISS] [--force]``: a development CA, the broker's
  certificate, one client certificate per device and one for central, the
  command-signing and root Ed25519 key pairs, a mosquitto TLS config with its
  ACL, an ``agent.toml`` per device, and ``NEXT-STEPS.txt`` with the exact
  commands (layout: ``certs/README.md``, :mod:`agent.central.pki`). Existing
  files are never overwritten without ``--force``. DEV/TEST material only.
* ``certs show FILE``: subject, issuer, names, validity, usage and
  fingerprints of every certificate in FILE (PEM or DER); for a private key,
  its type and public-key hash (to match it with a certificate).
* ``certs check [--config PATH] [--warn-days N]``: the TLS files of the
  agent's ``[mqtt]`` section as the link will use them: readable, the key
  matches the certificate, the certificate chains to ``ca_file``, nothing
  expired or ending within N days (30), OpenSSL loads them.

Exit codes: 0 done (``check``: no problem; warnings do not count); 1
``check`` found a problem; 2 unusable input (bad option, unreadable file, bad
config, files that exist already); 70 internal error.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Annotated

import typer

from agent.central.pki import (
    DEFAULT_BROKER_HOSTS,
    DEFAULT_BROKER_PORT,
    DEFAULT_DAYS,
    DEFAULT_ISSUER,
    DEFAULT_WARN_DAYS,
    MAX_DAYS,
    NEXT_STEPS,
    BrokerNames,
    DevBundleSpec,
    Level,
    PkiError,
    check_client_files,
    is_private_key,
    key_description,
    load_certificates,
    load_private_key,
    make_dev_bundle,
    public_key_sha256,
    read_limited,
    summarize,
    write_bundle,
)
from agent.cli.common import CONFIG_OPTION_HELP, EXIT_UNSAFE, guarded
from agent.config import load_config, resolve_config_path
from agent.logs import configure_logging

app = typer.Typer(
    help="Certificates for mutual TLS: make a DEV/TEST set, show and check real ones.",
    no_args_is_help=True,
)

#: The device ``certs init`` makes a certificate for when no --device is given.
DEFAULT_DEVICE = "cabinet-1"


@app.callback()
def _logs_to_stderr() -> None:
    # The CLI reports what matters itself; library logs stay off stdout.
    configure_logging("error", "auto", stream=sys.stderr)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


# -- init -----------------------------------------------------------------------------------------


@app.command("init")
@guarded
def init(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder to write into (created, mode 0700).",
            show_default=False,
        ),
    ],
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            metavar="ID",
            help=f"A device id to make a certificate for (repeat; default {DEFAULT_DEVICE}).",
            show_default=False,
        ),
    ] = None,
    broker_host: Annotated[
        list[str] | None,
        typer.Option(
            "--broker-host",
            metavar="NAME|IP",
            help="A DNS name or IP address of the broker for its certificate (repeat; default "
            "localhost, 127.0.0.1, ::1). The first is what devices connect to.",
            show_default=False,
        ),
    ] = None,
    broker_port: Annotated[
        int, typer.Option("--broker-port", help="The broker's TLS port.")
    ] = DEFAULT_BROKER_PORT,
    days: Annotated[
        int,
        typer.Option(
            "--days", help=f"How long certificates and the command key last (1-{MAX_DAYS})."
        ),
    ] = DEFAULT_DAYS,
    issuer: Annotated[
        str, typer.Option("--issuer", "--iss", help="The issuer ('iss') of the signing keys.")
    ] = DEFAULT_ISSUER,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files (and keys) that exist already.")
    ] = False,
) -> None:
    """Make a DEV/TEST CA, broker, device and central certificates, and signing keys.

    Also writes a mosquitto config that requires client certificates (with an
    ACL: each device its own topics), an agent.toml per device, and
    NEXT-STEPS.txt with the exact commands. NOT FOR PRODUCTION: production
    uses the city's PKI (certs/README.md). Nothing that exists is
    overwritten without --force.
    """
    spec = DevBundleSpec(
        out=out.expanduser().absolute(),
        devices=tuple(device or (DEFAULT_DEVICE,)),
        broker=BrokerNames.parse(broker_host or list(DEFAULT_BROKER_HOSTS)),
        broker_port=broker_port,
        days=days,
        issuer=issuer,
    )
    bundle = make_dev_bundle(spec, now=_now())
    write_bundle(spec.out, bundle.files, force=force)
    secrets = sum(1 for f in bundle.files if f.secret)
    typer.echo("greenwave certs init: DEV/TEST material, NOT FOR PRODUCTION")
    typer.echo(
        f"wrote {len(bundle.files)} files in {spec.out} "
        f"({secrets} private keys, mode 0600); this text is in {NEXT_STEPS}"
    )
    typer.echo("")
    typer.echo(bundle.next_steps, nl=False)


# -- show -----------------------------------------------------------------------------------------


@app.command("show")
@guarded
def show(
    file: Annotated[
        Path,
        typer.Argument(
            help="A certificate (PEM, several, or DER) or a private key.", metavar="FILE"
        ),
    ],
) -> None:
    """Print subject, issuer, names, validity, usage and fingerprints."""
    data = read_limited(file)
    now = _now()
    if is_private_key(data) and b"CERTIFICATE-----" not in data:
        key = load_private_key(data, str(file))
        typer.echo(f"{file}: a private key ({key_description(key)}); keep it mode 0600")
        typer.echo(f"  public key sha256  {public_key_sha256(key)}")
        typer.echo("  (the certificate it belongs to shows the same public key sha256)")
        return
    certs = load_certificates(data, str(file))
    plural = "s" if len(certs) != 1 else ""
    typer.echo(f"{file}: {len(certs)} certificate{plural}")
    for index, cert in enumerate(certs):
        info = summarize(cert)
        if len(certs) > 1:
            typer.echo(f"[{index + 1}]")
        kind = "CA" if info.is_ca else "end entity"
        if info.self_signed:
            kind += ", self-signed"
        typer.echo(f"  subject      {info.subject}")
        typer.echo(f"  issuer       {info.issuer}")
        typer.echo(f"  kind         {kind}; usage: {', '.join(info.usages)}")
        typer.echo(f"  names (SAN)  {', '.join(info.sans) if info.sans else 'none'}")
        typer.echo(f"  valid        {_when(info.not_before)} .. {_when(info.not_after)}")
        typer.echo(f"               {_validity_note(info.not_before, info.not_after, now)}")
        typer.echo(f"  key          {info.key}")
        typer.echo(f"  serial       {info.serial}")
        typer.echo(f"  sha256       {info.fingerprint}")
        typer.echo(f"  public key sha256  {info.public_key_sha256}")


def _validity_note(start: datetime.datetime, end: datetime.datetime, now: datetime.datetime) -> str:
    if now < start:
        return "NOT YET VALID (is this machine's clock right?)"
    if now >= end:
        return f"EXPIRED {(now - end).days} day(s) ago"
    return f"valid now, {(end - now).days} day(s) left"


# -- check ----------------------------------------------------------------------------------------


@app.command("check")
@guarded
def check(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help=CONFIG_OPTION_HELP, show_default=False)
    ] = None,
    warn_days: Annotated[
        int, typer.Option("--warn-days", help="Warn about certificates ending within N days.")
    ] = DEFAULT_WARN_DAYS,
) -> None:
    """Check the agent's TLS files (CA, certificate, key) as its MQTT link will use them.

    Files exist and are readable, the key matches the certificate, the
    certificate chains to ca_file, nothing is expired or ending soon, OpenSSL
    loads them. Exit 0 when no problem was found (warnings do not count), 1
    otherwise. It cannot see what the broker trusts: the connection decides.
    """
    if not 0 <= warn_days <= MAX_DAYS:
        raise PkiError(f"--warn-days {warn_days}: between 0 and {MAX_DAYS}")
    path = resolve_config_path(config)
    loaded = load_config(path)
    mqtt = loaded.mqtt
    typer.echo(
        f"{path}: device {loaded.device.id}, broker {mqtt.host}:{mqtt.port}, "
        f"TLS {'on' if mqtt.tls else 'off'}"
    )
    if not mqtt.tls:
        typer.echo(
            "  FAIL  tls        tls = false: the link is neither encrypted nor authenticated"
        )
        typer.echo("  (set tls = true with ca_file, cert_file and key_file in [mqtt])")
        raise typer.Exit(EXIT_UNSAFE)
    findings = check_client_files(
        ca_file=mqtt.ca_file,
        cert_file=mqtt.cert_file,
        key_file=mqtt.key_file,
        device_id=loaded.device.id,
        now=_now(),
        warn_days=warn_days,
    )
    for finding in findings:
        typer.echo(f"  {finding.level:<4}  {finding.item:<9}  {finding.detail}")
    failed = sum(1 for f in findings if f.level is Level.FAIL)
    warned = sum(1 for f in findings if f.level is Level.WARN)
    if failed:
        typer.echo(f"{failed} problem(s), {warned} warning(s)")
        raise typer.Exit(EXIT_UNSAFE)
    typer.echo(
        f"OK ({warned} warning(s)): the files are usable; whether the broker accepts "
        "them shows when the agent connects"
    )
