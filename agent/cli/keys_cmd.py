"""``greenwave keys …``: the device's trust store, provisioned by hand (SPEC §4 "Keys").

Run on the device, as root or as a member of group ``greenwave``, before or
while the agent runs (it notices the change on its next command). The store
is ``<state dir>/trust.json``; the state dir comes from ``--state-dir`` or
the ``[state]`` section of the agent's config. Every change is one atomic,
fsync'd write (see :mod:`agent.central.trust`).

* ``keys list [--json]``: kid, issuer, role, expiry, fingerprint.
* ``keys add --kid KID --issuer ISS --role root|command [--not-after WHEN] FILE``:
  FILE holds the *public* key (PEM, base64url or a public JWK; ``-`` reads
  standard input). A private key is refused and never stored. Command keys
  need an expiry; root keys default to none.
* ``keys remove KID``: the last usable root key is kept unless ``--force``:
  without one, no ``keys.update`` could be verified afterwards.

Errors print one line and exit 2.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import typer

from agent.central.commands import Role
from agent.central.trust import TRUST_FILE, TrustedKey, TrustStore, TrustStoreError
from agent.cli.common import CONFIG_OPTION_HELP, config_if_present, guarded
from agent.errors import ConfigError
from agent.logs import configure_logging

app = typer.Typer(
    help="The trust store: which keys may sign commands for this device.",
    no_args_is_help=True,
)

#: Version of the ``keys list --json`` layout.
JSON_FORMAT_VERSION = 1
#: Largest key file read (a PEM public key is about 113 bytes).
MAX_KEY_FILE_BYTES = 64 * 1024

STATE_DIR_HELP = "The agent's state directory (default: state.dir in the config)."

_KID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ISSUER = re.compile(r"^[\x21-\x7e]{1,128}$")
_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


@app.callback()
def _logs_to_stderr() -> None:
    # The CLI reports what matters itself; library logs stay off stdout.
    configure_logging("error", "auto", stream=sys.stderr)


# -- shared helpers (``greenwave central`` uses them too) ---------------------------------


def parse_moment(text: str, *, now: float, relative_unit: Literal["s", "d"]) -> float:
    """A moment as seconds since the epoch, from what a person types.

    ``2027-01-01`` (midnight UTC), ``2027-01-01T08:30:00+01:00`` or
    ``…T08:30Z`` (ISO 8601; no zone means UTC), ``1798761600`` (epoch
    seconds), or ``+N`` relative to ``now`` with an optional unit ``s``,
    ``m``, ``h``, ``d`` (without one: ``relative_unit``). ValueError otherwise.
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount = float(relative.group(1)) * _UNIT_S[relative.group(2) or relative_unit]
        return now + amount
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        unit = "days" if relative_unit == "d" else "seconds"
        raise ValueError(
            f"not a date or time: {text!r} (give 2027-01-01, 2027-01-01T08:30Z, "
            f"epoch seconds, or +N {unit})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def show_moment(epoch: float | None) -> str:
    """``2027-01-01 00:00:00Z``, or ``never`` for None."""
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _state_dir(config: Path | None, state_dir: Path | None) -> Path:
    if state_dir is not None:
        return state_dir
    agent_config, _ = config_if_present(config)
    if agent_config is None:
        raise ConfigError(
            "no agent config found: give --config PATH or --state-dir DIR "
            "(the trust store is <state dir>/trust.json)"
        )
    return agent_config.state.dir


def _open_store(config: Path | None, state_dir: Path | None, *, writing: bool) -> TrustStore:
    directory = _state_dir(config, state_dir)
    if writing and not directory.is_dir():
        raise TrustStoreError(
            f"the state directory {directory} does not exist (the agent creates it on first "
            f"start; or: install -d -o greenwave -g greenwave -m 0750 {directory})"
        )
    return TrustStore.open(directory / TRUST_FILE, clock=time.time, watch=False)


def _os_problem(store: TrustStore, err: OSError) -> TrustStoreError:
    return TrustStoreError(
        f"cannot write {store.path}: {err.strerror or err} "
        "(run as root or as a member of group greenwave)"
    )


def _read_key_file(file: Path) -> bytes:
    try:
        if str(file) == "-":
            data = sys.stdin.buffer.read(MAX_KEY_FILE_BYTES + 1)
        else:
            with file.open("rb") as handle:
                data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise TrustStoreError(f"{file}: cannot read: {err.strerror or err}") from err
    if len(data) > MAX_KEY_FILE_BYTES:
        raise TrustStoreError(f"{file}: larger than {MAX_KEY_FILE_BYTES // 1024} KiB: not a key")
    return data


def _key_material(data: bytes, source: Path) -> bytes | str:
    """PEM/base64url as they are; a JWK reduced to its ``x`` (a private JWK refused)."""
    text = data.strip()
    if not text.startswith(b"{"):
        return data
    try:
        jwk = json.loads(text)
    except ValueError as err:
        raise TrustStoreError(f"{source}: neither a PEM, base64url nor JWK key") from err
    if not isinstance(jwk, dict):
        raise TrustStoreError(f"{source}: not a JWK (a JSON object)")
    if "d" in jwk:
        raise TrustStoreError(
            f"{source}: this is a PRIVATE key (JWK with 'd'); give the device the public key only"
        )
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise TrustStoreError(f"{source}: not an Ed25519 JWK (kty OKP, crv Ed25519, x)")
    x: str = jwk["x"]
    return x


def _key_json(key: TrustedKey, now: float) -> dict[str, object]:
    return {
        "kid": key.kid,
        "iss": key.iss,
        "role": str(key.role),
        "alg": key.alg,
        "not_after": key.not_after,
        "not_after_iso": None if key.not_after is None else show_moment(key.not_after),
        "expired": key.expired(now),
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "source": key.source,
    }


def _usable_roots(store: TrustStore, now: float, *, besides: str) -> list[TrustedKey]:
    return [
        k
        for k in store.list_keys()
        if k.role == Role.ROOT and k.kid != besides and not k.expired(now)
    ]


_LAST_ROOT = (
    "{kid} is the last usable root key: without one no keys.update could be verified, "
    "and command keys could be changed only here, by hand"
)


# -- verbs ---------------------------------------------------------------------------------


@app.command("list")
@guarded
def list_keys(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    state_dir: Path | None = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
) -> None:
    """List the trusted keys: kid, role, issuer, expiry and fingerprint."""
    store = _open_store(config, state_dir, writing=False)
    now = time.time()
    keys = store.list_keys()
    if as_json:
        document = {
            "format": JSON_FORMAT_VERSION,
            "trust_store": str(store.path),
            "command_keys_version": store.command_keys_version,
            "loaded_from_backup": store.loaded_from_backup,
            "keys": [_key_json(key, now) for key in keys],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if store.loaded_from_backup:
        typer.echo(f"warning: read from the backup copy: {store.loaded_from_backup}", err=True)
    typer.echo(
        f"{store.path}: {len(keys)} key(s), command keys version {store.command_keys_version}"
    )
    if not keys:
        typer.echo("  no keys: every command is rejected (greenwave keys add …)")
        return
    kid_width = max(3, *(len(k.kid) for k in keys))
    iss_width = max(6, *(len(k.iss) for k in keys))
    typer.echo(f"  {'KID':<{kid_width}}  {'ROLE':<7}  {'ISSUER':<{iss_width}}  EXPIRES")
    for key in keys:
        mark = "  EXPIRED" if key.expired(now) else ""
        via = "" if key.source == "local" else f"  (via {key.source})"
        typer.echo(
            f"  {key.kid:<{kid_width}}  {key.role:<7}  {key.iss:<{iss_width}}  "
            f"{show_moment(key.not_after)}{mark}{via}"
        )
        typer.echo(f"  {'':<{kid_width}}  fingerprint {key.fingerprint}")


@app.command("add")
@guarded
def add(
    file: Path = typer.Argument(
        ...,
        help="The PUBLIC key: PEM, base64url (43 characters) or a JWK; '-' reads stdin.",
        metavar="FILE",
        show_default=False,
    ),
    kid: str = typer.Option(..., "--kid", help="Key id, as central puts it in 'kid'."),
    issuer: str = typer.Option(
        ..., "--issuer", "--iss", help="The issuer ('iss') whose commands this key signs."
    ),
    role: Role = typer.Option(
        ..., "--role", help="root: signs keys.update only (offline); command: everything else."
    ),
    not_after: str | None = typer.Option(
        None,
        "--not-after",
        help="Expiry: 2027-01-01, 2027-01-01T08:30Z, epoch seconds, +DAYS or 'never'. "
        "Required for command keys; root keys default to never.",
    ),
    replace: bool = typer.Option(False, "--replace", help="Replace a key with the same kid."),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    state_dir: Path | None = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
) -> None:
    """Trust a public key for an issuer and role; prints its fingerprint.

    A private key is refused and never stored: the device needs only the
    public half. Compare the fingerprint with the one central shows.
    """
    if not _KID.fullmatch(kid):
        raise TrustStoreError(f"not a key id (1-64 of A-Z a-z 0-9 . _ : -): {kid!r}")
    if not _ISSUER.fullmatch(issuer):
        raise TrustStoreError(f"not an issuer id (1-128 printable ASCII, no spaces): {issuer!r}")
    now = time.time()
    expiry = _expiry(not_after, role, now)
    key = TrustedKey.from_public_key(
        _key_material(_read_key_file(file), file),
        iss=issuer,
        role=role,
        kid=kid,
        not_after=expiry,
    )
    store = _open_store(config, state_dir, writing=True)
    old = store.get(kid)
    twin = next(
        (k for k in store.list_keys() if k.public_key == key.public_key and k.kid != kid), None
    )
    if twin is not None:
        raise TrustStoreError(f"this public key is already trusted as {twin.kid!r}")
    if old is not None and not replace:
        raise TrustStoreError(f"a key with kid {kid!r} is already trusted (--replace replaces it)")
    if (
        old is not None
        and old.role == Role.ROOT
        and role != Role.ROOT
        and not old.expired(now)
        and not _usable_roots(store, now, besides=kid)
    ):
        raise TrustStoreError(_LAST_ROOT.format(kid=kid) + "; add another root key first")
    try:
        if old is not None:
            store.remove(kid)
        try:
            store.add(key)
        except TrustStoreError as err:
            if old is None:
                raise
            raise TrustStoreError(
                f"removed the old key {kid} but could not add the new one: {err}"
            ) from err
    except OSError as err:
        raise _os_problem(store, err) from err
    verb = "replaced" if old is not None else "added"
    typer.echo(
        f"{verb} {role} key {kid} for issuer {issuer}, expires {show_moment(expiry)} ({store.path})"
    )
    typer.echo(f"fingerprint {key.fingerprint}")


def _expiry(text: str | None, role: Role, now: float) -> float | None:
    if text is None or text.strip().lower() in {"never", "none"}:
        if role == Role.COMMAND:
            raise TrustStoreError(
                "a command key needs an expiry: --not-after DATE|EPOCH|+DAYS "
                "(command keys are online keys; keys.update requires one too)"
            )
        return None
    try:
        expiry = parse_moment(text, now=now, relative_unit="d")
    except ValueError as err:
        raise TrustStoreError(f"--not-after: {err}") from err
    if expiry <= now:
        raise TrustStoreError(
            f"--not-after {text} is {show_moment(expiry)}, already past: the key would never be "
            "usable"
        )
    return expiry


@app.command("remove")
@guarded
def remove(
    kid: str = typer.Argument(..., help="The key id to remove.", show_default=False),
    force: bool = typer.Option(False, "--force", help="Remove even the last usable root key."),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_OPTION_HELP),
    state_dir: Path | None = typer.Option(None, "--state-dir", help=STATE_DIR_HELP),
) -> None:
    """Stop trusting a key (commands it signed are rejected from now on)."""
    store = _open_store(config, state_dir, writing=True)
    now = time.time()
    key = store.get(kid)
    if key is None:
        raise TrustStoreError(f"no key with kid {kid!r} (greenwave keys list shows them)")
    last_root = (
        key.role == Role.ROOT
        and not key.expired(now)
        and not _usable_roots(store, now, besides=kid)
    )
    if last_root and not force:
        raise TrustStoreError(_LAST_ROOT.format(kid=kid) + " (--force removes it anyway)")
    try:
        store.remove(kid)
    except OSError as err:
        raise _os_problem(store, err) from err
    typer.echo(f"removed {key.role} key {kid} (issuer {key.iss}, fingerprint {key.fingerprint})")
    if last_root:
        typer.echo(
            "warning: no usable root key is left; keys.update will be rejected until one is "
            "added (greenwave keys add --role root …)",
            err=True,
        )
