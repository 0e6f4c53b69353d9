"""`hostctl keys init`: create the Ed25519 key pair the agents trust."""

from typing import Annotated

import typer

from hostctl.cmdutil import HelpGroup, user_errors

keys_app = typer.Typer(
    cls=HelpGroup, help="Manage the signing key pair agents trust.", no_args_is_help=True
)


@keys_app.command("init")
def init_command(
    directory: Annotated[
        str | None,
        typer.Option(
            "--dir", help="Where to write host.key and host.pub (default: user config dir)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing key pair.", metavar="")
    ] = False,
) -> None:
    """Create host.key (secret, mode 0600) and host.pub (give it to every agent)."""
    from hostctl.keys import create_key_pair

    with user_errors():
        secret, public, kid = create_key_pair(directory, force=force)
    typer.echo(f"secret key: {secret}")
    typer.echo(f"public key: {public}  (key id {kid})")
    typer.echo(f"agents trust it with:  --trust {public}")


def register(app: typer.Typer) -> None:
    """Add the `keys` command group to the app."""
    app.add_typer(keys_app, name="keys")
