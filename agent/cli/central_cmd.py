"""``greenwave central …``: the reference central tool for integrators (SPEC §4).

It runs anywhere that reaches the broker, and shows in a few commands what a
city's central system does: make a signing key, sign commands, publish them,
follow the acknowledgements, send heartbeats, watch what devices publish.
The logic lives in :mod:`agent.central.client`; this module is its command
line.

* ``keygen``: a new Ed25519 key pair, and the ``greenwave keys add`` line
  that provisions it on a device.
* ``sign``: print one signed command (compact JWS), for piping elsewhere.
* ``send``: sign, publish on the device's or group's ``cmd`` topic, and
  follow the acks until each device reached ``--wait`` (or refused).
* ``heartbeat``: signed heartbeats on ``greenwave/v1/central/heartbeat``.
* ``follow``: print what devices publish; check events sequence numbers.
* ``verify``: dry-run a token against a trust store file.

Exit codes: 0 done (every device reached the wanted status); 1 a device
rejected or failed the command (``verify``: the token would be rejected;
``follow``: events were lost); 2 unusable input or broker unreachable; 3 timed
out waiting; 70 internal error.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.central.client import (
    FOLLOW_KINDS,
    AckOutcome,
    BrokerSettings,
    CentralClient,
    CentralError,
    CommandSigner,
    EventsSequence,
    Received,
    SequenceIssue,
    SignedCommand,
    load_signing_key,
    parse_ack,
    parse_events_batch,
    peek_claims,
)
from agent.central.commands import (
    COMMANDS,
    Ack,
    AckStatus,
    CommandRejected,
    CommandSettings,
    Role,
)
from agent.central.durable import DurableFile, strict_json_loads
from agent.central.jws import CommandVerifier
from agent.central.replay import PLAN_VERSION_KIND, REPLAY_KIND, ReplayMemory, VersionRecord
from agent.central.signing import DEFAULT_LIFETIME_S, SigningKey
from agent.central.trust import TrustStore, key_thumbprint
from agent.cli.common import EXIT_OK, EXIT_UNSAFE, guarded
from agent.cli.keys_cmd import parse_moment, show_moment
from agent.errors import PlanParseError
from agent.logs import configure_logging
from agent.plan.document import parse_json
from agent.plan.model import MAX_PLAN_BYTES

app = typer.Typer(
    help="The reference central tool: keys, signed commands, acks, heartbeats, telemetry.",
    no_args_is_help=True,
)

#: Exit code when waiting ran out of time.
EXIT_TIMEOUT = 3
#: The file name that means standard input.
STDIN = "-"
#: Largest --args-file read.
MAX_ARGS_BYTES = 1024 * 1024

_KID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Wait(enum.StrEnum):
    """How far ``send`` follows a command."""

    ACCEPTED = "accepted"
    APPLIED = "applied"
    NONE = "none"


@app.callback()
def _logs_to_stderr() -> None:
    # stdout carries tokens and messages; library warnings go to stderr.
    configure_logging("warning", "auto", stream=sys.stderr)


# -- options shared by several verbs ---------------------------------------------------------

BrokerOpt = Annotated[
    str,
    typer.Option(
        "--broker",
        envvar="GREENWAVE_BROKER",
        help="The broker, HOST[:PORT] (port 1883, or 8883 with --tls).",
    ),
]
TlsOpt = Annotated[bool, typer.Option("--tls", help="Connect with TLS (the broker is verified).")]
CaOpt = Annotated[
    Path | None, typer.Option("--ca", help="CA certificate(s) for the broker (implies --tls).")
]
CertOpt = Annotated[
    Path | None, typer.Option("--cert", help="Client certificate, PEM (implies --tls).")
]
CertKeyOpt = Annotated[
    Path | None, typer.Option("--cert-key", help="The client certificate's key.")
]
UserOpt = Annotated[str | None, typer.Option("--username", help="Broker user name.")]
PasswordFileOpt = Annotated[
    Path | None, typer.Option("--password-file", help="File holding the broker password.")
]
KeyOpt = Annotated[
    Path,
    typer.Option(
        "--key",
        envvar="GREENWAVE_CENTRAL_KEY",
        help="The signing key, PKCS#8 PEM (central keygen writes KID.key).",
    ),
]
KeyPasswordOpt = Annotated[
    Path | None,
    typer.Option("--key-password-file", help="File holding the signing key's password."),
]
KidOpt = Annotated[
    str, typer.Option("--kid", envvar="GREENWAVE_CENTRAL_KID", help="The key id the device knows.")
]
IssOpt = Annotated[
    str,
    typer.Option(
        "--iss", "--issuer", envvar="GREENWAVE_CENTRAL_ISS", help="The issuer id ('iss')."
    ),
]
CmdOpt = Annotated[
    str | None,
    typer.Option("--cmd", help=f"The command: {', '.join(COMMANDS)} (with --plan: plan.load)."),
]
ArgsOpt = Annotated[
    str | None, typer.Option("--args", help="The arguments, a JSON object: '{\"pattern\": 3}'.")
]
ArgsFileOpt = Annotated[
    Path | None, typer.Option("--args-file", help="A file holding the arguments (JSON object).")
]
PlanOpt = Annotated[
    Path | None, typer.Option("--plan", help="A timing plan document, sent as plan.load.")
]
ActivateOpt = Annotated[
    str | None,
    typer.Option(
        "--activate-at",
        help="control.pattern activate_at: ISO 8601 (UTC if no zone), epoch s, or +SECONDS.",
    ),
]
NotBeforeOpt = Annotated[
    str | None,
    typer.Option("--not-before", help="Optional nbf claim: ISO 8601, epoch s, or +SECONDS."),
]
LifetimeOpt = Annotated[
    float,
    typer.Option("--lifetime", help="Seconds the command stays valid (exp - iat).", min=1),
]
JtiOpt = Annotated[
    str | None, typer.Option("--jti", help="The command id (default: 128 random bits).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


# -- helpers -------------------------------------------------------------------------------


def _secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CentralError(f"{path}: cannot read the {what}: {err}") from err
    secret = text.rstrip("\r\n")
    if not secret:
        raise CentralError(f"{path}: the {what} file is empty")
    return secret


def _broker(
    address: str,
    *,
    tls: bool,
    ca: Path | None,
    cert: Path | None,
    cert_key: Path | None,
    username: str | None,
    password_file: Path | None,
) -> BrokerSettings:
    use_tls = tls or ca is not None or cert is not None or cert_key is not None
    password = _secret(password_file, "broker password") if password_file else None
    return BrokerSettings.from_address(
        address,
        tls=use_tls,
        ca_file=ca,
        cert_file=cert,
        key_file=cert_key,
        username=username,
        password=password,
    )


def _signer(key: Path, kid: str, iss: str, key_password_file: Path | None) -> CommandSigner:
    password = _secret(key_password_file, "key password") if key_password_file else None
    signing_key = load_signing_key(
        key, kid=kid, password=password.encode("utf-8") if password else None
    )
    return CommandSigner(signing_key, iss)


def _audience(text: str) -> str | list[str]:
    if text.strip() == "*":
        return "*"
    devices = [part.strip() for part in text.split(",") if part.strip()]
    if not devices:
        raise CentralError("--aud names no device")
    return devices[0] if len(devices) == 1 else devices


def _read_limited(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise CentralError(f"{path}: cannot read: {err.strerror or err}") from err
    if len(data) > limit:
        raise CentralError(f"{path}: larger than {limit // 1024} KiB")
    return data


def _json_object(data: bytes | str, where: str) -> dict[str, Any]:
    try:
        value = strict_json_loads(data)
    except ValueError as err:
        raise CentralError(f"{where}: {err}") from err
    if not isinstance(value, dict):
        raise CentralError(f"{where}: the arguments are a JSON object {{…}}")
    return value


def _command(
    cmd: str | None,
    args: str | None,
    args_file: Path | None,
    plan: Path | None,
    activate_at: str | None,
    now: float,
) -> tuple[str, dict[str, Any]]:
    """The command name and its arguments from the options."""
    given = [
        name
        for name, v in (("--args", args), ("--args-file", args_file), ("--plan", plan))
        if v is not None
    ]
    if len(given) > 1:
        raise CentralError(f"give one of {', '.join(given)}")
    if cmd is None:
        if plan is None:
            raise CentralError(f"--cmd is required (one of {', '.join(COMMANDS)})")
        cmd = "plan.load"
    if plan is not None and cmd != "plan.load":
        raise CentralError(f"--plan goes with plan.load, not {cmd}")
    body: dict[str, Any] = {}
    if args is not None:
        body = _json_object(args, "--args")
    elif args_file is not None:
        body = _json_object(_read_limited(args_file, MAX_ARGS_BYTES), str(args_file))
    elif plan is not None:
        try:
            document = parse_json(_read_limited(plan, MAX_PLAN_BYTES))
        except PlanParseError as err:
            raise CentralError(f"{plan}: {err}") from err
        body = {"plan": document}
    if activate_at is not None:
        if cmd != "control.pattern":
            raise CentralError(f"--activate-at goes with control.pattern, not {cmd}")
        if "activate_at" in body:
            raise CentralError("activate_at is given twice (--args and --activate-at)")
        body["activate_at"] = _whole(_moment(activate_at, now, "--activate-at"))
    return cmd, body


def _moment(text: str, now: float, option: str) -> float:
    try:
        return parse_moment(text, now=now, relative_unit="s")
    except ValueError as err:
        raise CentralError(f"{option}: {err}") from err


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _sign(
    signer: CommandSigner,
    *,
    aud: str | list[str],
    cmd: str | None,
    args: str | None,
    args_file: Path | None,
    plan: Path | None,
    activate_at: str | None,
    not_before: str | None,
    lifetime: float,
    jti: str | None,
) -> SignedCommand:
    now = time.time()
    name, body = _command(cmd, args, args_file, plan, activate_at, now)
    nbf = _moment(not_before, now, "--not-before") if not_before is not None else None
    return signer.sign(name, body, aud=aud, jti=jti, nbf=nbf, lifetime_s=lifetime)


def _clock_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S.%f")[:-3]


def _emit_json(record: dict[str, Any]) -> None:
    typer.echo(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


def _run(coroutine: Any) -> int:
    """Run the verb's coroutine; Ctrl-C ends it (the coroutine reports what it did)."""
    try:
        result: int = asyncio.run(coroutine)
    except KeyboardInterrupt:
        return EXIT_OK
    return result


# -- keygen ------------------------------------------------------------------------------------


@app.command("keygen")
@guarded
def keygen(
    kid: Annotated[str, typer.Option("--kid", help="The key id (names the files).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for KID.key and KID.pub.")] = Path(
        "."
    ),
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            "--key-password-file",
            help="Encrypt the private key with the password in this file.",
        ),
    ] = None,
    iss: Annotated[
        str, typer.Option("--iss", "--issuer", help="Issuer, for the provisioning line.")
    ] = "ISSUER",
    role: Annotated[Role, typer.Option("--role", help="Role, for the provisioning line.")] = (
        Role.COMMAND
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make an Ed25519 signing key: KID.key (private, mode 0600) and KID.pub.

    Prints the public key (base64url) and the `greenwave keys add` line that
    provisions it on a device. Keep KID.key on central only.
    """
    if not _KID.fullmatch(kid):
        raise CentralError(f"not a key id (1-64 of A-Z a-z 0-9 . _ : -): {kid!r}")
    key = SigningKey.generate(kid)
    password = _secret(password_file, "key password") if password_file else None
    private_path, public_path = out / f"{kid}.key", out / f"{kid}.pub"
    if not force:
        existing = [str(p) for p in (private_path, public_path) if p.exists()]
        if existing:
            raise CentralError(f"{', '.join(existing)} exist(s) already (--force overwrites)")
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_file(private_path, key.private_pem(password.encode() if password else None), 0o600)
        _write_file(public_path, key.public_pem(), 0o644)
    except OSError as err:
        raise CentralError(f"cannot write the key files in {out}: {err.strerror or err}") from err
    public = key.public_key_b64
    expiry = " --not-after +365" if role == Role.COMMAND else ""
    provision = (
        f"greenwave keys add --kid {kid} --issuer {iss} --role {role}{expiry} {public_path.name}"
    )
    if as_json:
        _emit_json(
            {
                "kid": kid,
                "private_key_file": str(private_path),
                "public_key_file": str(public_path),
                "public_key": public,
                "fingerprint": key_thumbprint(public),
                "encrypted": password is not None,
                "provision": provision,
            }
        )
        return
    typer.echo(f"wrote {private_path} (private: keep it on central, mode 0600)")
    typer.echo(f"wrote {public_path}")
    typer.echo(f"public key  {public}")
    typer.echo(f"fingerprint {key_thumbprint(public)}")
    typer.echo("provision it on each device (as root), with the .pub file copied there:")
    typer.echo(f"  {provision}")


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` (never wider, whatever the umask), atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


# -- sign ---------------------------------------------------------------------------------------


@app.command("sign")
@guarded
def sign(
    key: KeyOpt,
    kid: KidOpt,
    iss: IssOpt,
    aud: Annotated[
        str, typer.Option("--aud", help="Device id, DEV,DEV,… or '*' (heartbeat only).")
    ],
    cmd: CmdOpt = None,
    args: ArgsOpt = None,
    args_file: ArgsFileOpt = None,
    plan: PlanOpt = None,
    activate_at: ActivateOpt = None,
    not_before: NotBeforeOpt = None,
    lifetime: LifetimeOpt = DEFAULT_LIFETIME_S,
    jti: JtiOpt = None,
    key_password_file: KeyPasswordOpt = None,
) -> None:
    """Print one signed command (compact JWS) on stdout, for piping elsewhere.

    The command and its arguments are checked against SPEC §4 first (a typo
    fails here, not as an E_SCHEMA ack); plan safety is the device's call.
    """
    signer = _signer(key, kid, iss, key_password_file)
    command = _sign(
        signer,
        aud=_audience(aud),
        cmd=cmd,
        args=args,
        args_file=args_file,
        plan=plan,
        activate_at=activate_at,
        not_before=not_before,
        lifetime=lifetime,
        jti=jti,
    )
    typer.echo(command.token)


# -- send ---------------------------------------------------------------------------------------


@app.command("send")
@guarded
def send(
    broker: BrokerOpt,
    key: KeyOpt,
    kid: KidOpt,
    iss: IssOpt,
    device: Annotated[
        str | None, typer.Option("--device", help="Send to this device's cmd topic.")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Send to this group's cmd topic (with --aud).")
    ] = None,
    aud: Annotated[
        str | None, typer.Option("--aud", help="With --group: the devices meant, DEV,DEV,….")
    ] = None,
    cmd: CmdOpt = None,
    args: ArgsOpt = None,
    args_file: ArgsFileOpt = None,
    plan: PlanOpt = None,
    activate_at: ActivateOpt = None,
    not_before: NotBeforeOpt = None,
    lifetime: LifetimeOpt = DEFAULT_LIFETIME_S,
    jti: JtiOpt = None,
    wait: Annotated[
        Wait, typer.Option("--wait", help="Follow the acks until this status on every device.")
    ] = Wait.ACCEPTED,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the acks.", min=0.1)
    ] = 30.0,
    as_json: JsonOpt = False,
    key_password_file: KeyPasswordOpt = None,
    tls: TlsOpt = False,
    ca: CaOpt = None,
    cert: CertOpt = None,
    cert_key: CertKeyOpt = None,
    username: UserOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Sign a command, publish it (QoS 1) and follow its acks.

    Acks are subscribed to before publishing. Exit 0 when every device
    reached --wait, 1 when one rejected or failed the command, 3 on timeout.
    """
    if (device is None) == (group is None):
        raise CentralError("give --device DEV, or --group G with --aud DEV,DEV,…")
    if device is not None and aud is not None:
        raise CentralError("--aud goes with --group; a --device command is addressed to it")
    if group is not None and aud is None:
        raise CentralError("--group needs --aud: the devices of the group the command is for")
    audience: str | list[str] = device if device is not None else _audience(aud or "")
    if audience == "*":
        raise CentralError('aud "*" is for heartbeats: use greenwave central heartbeat')
    settings = _broker(
        broker,
        tls=tls,
        ca=ca,
        cert=cert,
        cert_key=cert_key,
        username=username,
        password_file=password_file,
    )
    command = _sign(
        _signer(key, kid, iss, key_password_file),
        aud=audience,
        cmd=cmd,
        args=args,
        args_file=args_file,
        plan=plan,
        activate_at=activate_at,
        not_before=not_before,
        lifetime=lifetime,
        jti=jti,
    )
    code = _run(
        _send(
            settings,
            command,
            device=device,
            group=group,
            wait=wait,
            timeout_s=timeout,
            as_json=as_json,
        )
    )
    raise typer.Exit(code)


async def _send(
    settings: BrokerSettings,
    command: SignedCommand,
    *,
    device: str | None,
    group: str | None,
    wait: Wait,
    timeout_s: float,
    as_json: bool,
) -> int:
    targets = (device,) if device is not None else command.audience
    async with CentralClient(settings) as central:
        if wait == Wait.NONE:
            topic = await central.publish(command, device=device, group=group)
            _show_sent(command, topic, as_json)
            return EXIT_OK
        async with central.acks(targets) as stream:
            topic = await central.publish(command, device=device, group=group)
            _show_sent(command, topic, as_json)
            outcome = await stream.wait_for(
                command.jti,
                want=AckStatus(wait.value),
                timeout_s=timeout_s,
                on_ack=lambda ack: _show_ack(ack, as_json),
            )
    return _show_outcome(outcome, timeout_s, as_json)


def _show_sent(command: SignedCommand, topic: str, as_json: bool) -> None:
    if as_json:
        _emit_json(
            {
                "event": "sent",
                "topic": topic,
                "cmd": command.cmd,
                "jti": command.jti,
                "aud": list(command.audience),
                "exp": command.exp,
            }
        )
        return
    typer.echo(
        f"sent {command.cmd} to {topic} (jti {command.jti}, valid until {show_moment(command.exp)})"
    )


def _show_ack(ack: Ack, as_json: bool) -> None:
    if as_json:
        _emit_json({"event": "ack" if ack.jti else "unattributed", **ack.model_dump(mode="json")})
        return
    typer.echo(_ack_line(ack))


def _ack_line(ack: Ack) -> str:
    detail = f"  {ack.detail}" if ack.detail else ""
    note = "  (no jti: a command the device could not authenticate, probably this one)"
    return f"{ack.device}  {ack.status:<8}  {ack.code}{detail}" + ("" if ack.jti else note)


def _show_outcome(outcome: AckOutcome, timeout: float, as_json: bool) -> int:
    if outcome.refused:
        code = EXIT_UNSAFE
    elif outcome.missing:
        code = EXIT_TIMEOUT
    else:
        code = EXIT_OK
    if as_json:
        _emit_json(
            {
                "event": "result",
                "jti": outcome.jti,
                "want": str(outcome.want),
                "ok": outcome.ok,
                "reached": list(outcome.reached),
                "refused": list(outcome.refused),
                "missing": list(outcome.missing),
                "exit_code": code,
            }
        )
        return code
    total = len(outcome.devices)
    if outcome.ok:
        typer.echo(f"{outcome.want} on {total} of {total} device(s)")
        return code
    if outcome.refused:
        refused = ", ".join(f"{d} ({outcome.final[d].code})" for d in outcome.refused)
        typer.echo(f"greenwave: REJECTED or FAILED on {refused}", err=True)
    if outcome.missing:
        typer.echo(
            f"greenwave: no {outcome.want} within {timeout:g} s from {', '.join(outcome.missing)}",
            err=True,
        )
    return code


# -- heartbeat -----------------------------------------------------------------------------------


@app.command("heartbeat")
@guarded
def heartbeat(
    broker: BrokerOpt,
    key: KeyOpt,
    kid: KidOpt,
    iss: IssOpt,
    every: Annotated[
        float, typer.Option("--every", help="Seconds between heartbeats.", min=0.05)
    ] = 5.0,
    count: Annotated[
        int, typer.Option("--count", help="Stop after N heartbeats (0: until Ctrl-C).", min=0)
    ] = 0,
    lifetime: LifetimeOpt = DEFAULT_LIFETIME_S,
    key_password_file: KeyPasswordOpt = None,
    tls: TlsOpt = False,
    ca: CaOpt = None,
    cert: CertOpt = None,
    cert_key: CertKeyOpt = None,
    username: UserOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Send signed heartbeats (aud "*") on greenwave/v1/central/heartbeat.

    Devices keep central's lease while heartbeats arrive (SPEC §6).
    """
    settings = _broker(
        broker,
        tls=tls,
        ca=ca,
        cert=cert,
        cert_key=cert_key,
        username=username,
        password_file=password_file,
    )
    signer = _signer(key, kid, iss, key_password_file)
    sent: list[SignedCommand] = []
    code = _run(_beat(settings, signer, every=every, count=count, lifetime=lifetime, sent=sent))
    if count == 0 or len(sent) < count:
        typer.echo(f"stopped after {len(sent)} heartbeat(s)", err=True)
    raise typer.Exit(code)


async def _beat(
    settings: BrokerSettings,
    signer: CommandSigner,
    *,
    every: float,
    count: int,
    lifetime: float,
    sent: list[SignedCommand],
) -> int:
    loop = asyncio.get_running_loop()
    async with CentralClient(settings) as central:
        start = loop.time()
        while count == 0 or len(sent) < count:
            if sent:
                await asyncio.sleep(max(0.0, start + len(sent) * every - loop.time()))
            beat = signer.heartbeat(lifetime_s=lifetime)
            await central.heartbeat(beat)
            sent.append(beat)
            typer.echo(
                f"heartbeat {len(sent)} sent (jti {beat.jti}, valid until {show_moment(beat.exp)})"
            )
    return EXIT_OK


# -- follow ---------------------------------------------------------------------------------------


@app.command("follow")
@guarded
def follow(
    broker: BrokerOpt,
    device: Annotated[
        list[str], typer.Option("--device", help="The device to follow (repeat for more).")
    ],
    topics: Annotated[
        str, typer.Option("--topics", help="Which topics, comma-separated (also: cmd).")
    ] = ",".join(FOLLOW_KINDS),
    as_json: JsonOpt = False,
    count: Annotated[
        int, typer.Option("--count", help="Stop after N messages (0: until Ctrl-C).", min=0)
    ] = 0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop after this many seconds.", min=0.1)
    ] = None,
    tls: TlsOpt = False,
    ca: CaOpt = None,
    cert: CertOpt = None,
    cert_key: CertKeyOpt = None,
    username: UserOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Print what devices publish, as it arrives; warn loudly on lost events.

    Events batches are checked for contiguous sequence numbers: a gap, or
    events the device says it dropped, is a WARNING on stderr (and exit 1 at
    the end). Exit 3 when --timeout ends it before --count messages.
    """
    settings = _broker(
        broker,
        tls=tls,
        ca=ca,
        cert=cert,
        cert_key=cert_key,
        username=username,
        password_file=password_file,
    )
    kinds = tuple(k.strip() for k in topics.split(",") if k.strip())
    watcher = _Follower(as_json=as_json)
    code = _run(_follow(settings, device, kinds, watcher, count=count, timeout_s=timeout))
    if code == EXIT_TIMEOUT:
        typer.echo(
            f"greenwave: {watcher.seen} of {count} message(s) within {timeout:g} s", err=True
        )
    losses = watcher.losses
    if losses:
        typer.echo(
            f"greenwave: {losses} events problem(s) seen: events were lost or broken", err=True
        )
        code = EXIT_UNSAFE
    raise typer.Exit(code)


async def _follow(
    settings: BrokerSettings,
    devices: list[str],
    kinds: tuple[str, ...],
    watcher: _Follower,
    *,
    count: int,
    timeout_s: float | None,
) -> int:
    async with CentralClient(settings) as central, central.follow(devices, kinds) as messages:
        typer.echo(f"following {', '.join(devices)}: {', '.join(kinds)} (Ctrl-C to stop)", err=True)
        try:
            async with asyncio.timeout(timeout_s):
                async for message in messages:
                    watcher.show(message)
                    if count and watcher.seen >= count:
                        return EXIT_OK
        except TimeoutError:
            return EXIT_TIMEOUT if count else EXIT_OK
    return EXIT_OK


class _Follower:
    """Prints followed messages; checks events sequence numbers."""

    def __init__(self, *, as_json: bool, clock: Callable[[], float] = time.time) -> None:
        self.as_json = as_json
        self.seen = 0
        self.losses = 0
        self._clock = clock
        self._sequence = EventsSequence()
        self._width = shutil.get_terminal_size((80, 24)).columns if sys.stdout.isatty() else 0

    def show(self, message: Received) -> None:
        self.seen += 1
        now = self._clock()
        issues: tuple[SequenceIssue, ...] = ()
        summary: str
        problem: str | None = None
        try:
            if message.kind == "events":
                batch = parse_events_batch(message)
                issues = self._sequence.feed(batch)
                summary = _events_line(batch.first_seq, batch.last_seq, len(batch.events))
            elif message.kind == "ack":
                summary = _ack_summary(parse_ack(message))
            elif message.kind == "cmd":
                summary = _cmd_summary(message)
            else:
                summary = _compact(message)
        except CentralError as err:
            problem = str(err)
            summary = f"MALFORMED: {problem}"
        if self.as_json:
            _emit_json(
                {
                    "ts": now,
                    "topic": message.topic,
                    "device": message.device,
                    "kind": message.kind,
                    "retained": message.retain,
                    **_payload_json(message),
                    **({"problem": problem} if problem is not None else {}),
                    **({"issues": [_issue_json(i) for i in issues]} if issues else {}),
                }
            )
        else:
            retained = " (retained)" if message.retain else ""
            line = f"{_clock_time(now)} {message.device or message.topic} {message.kind}"
            line = f"{line}{retained}  {summary}"
            if self._width and len(line) > self._width:
                line = line[: self._width - 1] + "…"
            typer.echo(line)
        if problem is not None and message.kind == "events":
            self.losses += 1
            typer.echo(f"greenwave: WARNING: events UNREADABLE: {problem}", err=True)
        for issue in issues:
            if issue.loud:
                self.losses += 1
                typer.echo(
                    f"greenwave: WARNING: events {issue.kind.upper()} on {issue.device}: "
                    f"{issue.detail}",
                    err=True,
                )
            else:
                typer.echo(f"greenwave: note: {issue.device}: {issue.detail}", err=True)


def _events_line(first: int, last: int, n: int) -> str:
    return f"events {first}..{last} ({n} event{'s' if n != 1 else ''})"


def _ack_summary(ack: Ack) -> str:
    detail = f"  {ack.detail}" if ack.detail else ""
    return f"{ack.status} {ack.code} {ack.cmd or '-'} jti {ack.jti or '-'}{detail}"


def _cmd_summary(message: Received) -> str:
    claims = peek_claims(message.payload.decode("ascii", errors="replace"))
    return (
        f"{claims.get('cmd')} jti {claims.get('jti')} aud {claims.get('aud')} "
        f"iss {claims.get('iss')} (signature not checked)"
    )


def _compact(message: Received) -> str:
    return json.dumps(message.json(), ensure_ascii=False, separators=(",", ":"))


def _payload_json(message: Received) -> dict[str, Any]:
    try:
        return {"payload": message.json()}
    except CentralError:
        return {"payload_text": message.payload.decode("utf-8", errors="replace")}


def _issue_json(issue: SequenceIssue) -> dict[str, Any]:
    return {
        "kind": issue.kind,
        "from_seq": issue.from_seq,
        "to_seq": issue.to_seq,
        "count": issue.count,
        "detail": issue.detail,
    }


# -- verify ---------------------------------------------------------------------------------------


@app.command("verify")
@guarded
def verify(
    trust: Annotated[
        Path, typer.Option("--trust", help="A trust store file (a device's trust.json).")
    ],
    token: Annotated[
        str, typer.Argument(help="The compact JWS; '-' reads it from stdin.", show_default=False)
    ] = STDIN,
    device: Annotated[
        str | None, typer.Option("--device", help="Verify as this device (default: from aud).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry-run a token through the device's verification (nothing is remembered).

    Checks header, key, signature, issuer, role, times, audience and
    arguments; not replay, plan version or site safety. Exit 0 when it would
    be accepted, 1 when rejected (with the code the device would send).
    """
    text = sys.stdin.read(1024 * 1024) if token == STDIN else token
    text = text.strip()
    if not trust.is_file():
        raise CentralError(f"{trust}: no such trust store file")
    as_device = device if device is not None else _device_from(text)
    settings = CommandSettings()
    with tempfile.TemporaryDirectory(prefix="greenwave-verify-") as scratch:
        verifier = CommandVerifier(
            device_id=as_device,
            trust=TrustStore.open(trust, clock=time.time, watch=False),
            replay=ReplayMemory(
                DurableFile(Path(scratch) / "replay.json", kind=REPLAY_KIND),
                settings=settings,
                clock=time.time,
            ),
            plan_version=VersionRecord(
                DurableFile(Path(scratch) / "plan-version.json", kind=PLAN_VERSION_KIND),
                what="plan",
            ),
            clock=time.time,
            settings=settings,
        )
        try:
            verified = verifier.verify(text, remember=False)
        except CommandRejected as rejection:
            if as_json:
                _emit_json(
                    {
                        "ok": False,
                        "device": as_device,
                        "code": str(rejection.code),
                        "detail": rejection.detail,
                    }
                )
            else:
                typer.echo(f"REJECTED {rejection.code}: {rejection.detail}")
            raise typer.Exit(EXIT_UNSAFE) from None
    if as_json:
        _emit_json(
            {
                "ok": True,
                "device": as_device,
                "cmd": verified.cmd,
                "jti": verified.jti,
                "iss": verified.iss,
                "kid": verified.kid,
                "aud": list(verified.aud),
                "exp": verified.exp,
            }
        )
        return
    typer.echo(
        f"OK {verified.cmd} from {verified.iss} (key {verified.kid}) for {as_device}, "
        f"jti {verified.jti}, valid until {show_moment(verified.exp)}"
    )
    typer.echo("  not checked here: replay, plan version, site safety")


def _device_from(token: str) -> str:
    """The first device in the token's aud (unverified, only to pick whom to verify as)."""
    try:
        aud = peek_claims(token).get("aud")
    except CentralError:
        return "dry-run"
    first = aud if isinstance(aud, str) else aud[0] if isinstance(aud, list) and aud else None
    if isinstance(first, str) and _DEVICE_ID.fullmatch(first):
        return first
    return "dry-run"
