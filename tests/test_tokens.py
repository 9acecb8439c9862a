"""Tokens come from the environment or a file; a token flag still works but says why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdascope.collector.tokens import TokenError, resolve_token


def resolve(
    *, flag: str | None = None, file: Path | None = None, env: dict[str, str] | None = None
) -> tuple[str | None, list[str]]:
    return resolve_token(
        flag_value=flag, file=file, env=env or {}, env_name="LAMBDASCOPE_TOKEN", flag="--token"
    )


def test_from_the_environment_quietly() -> None:
    assert resolve(env={"LAMBDASCOPE_TOKEN": " s3cret\n"}) == ("s3cret", [])


def test_none_when_nothing_is_given() -> None:
    assert resolve(env={"LAMBDASCOPE_TOKEN": ""}) == (None, [])


def test_from_a_private_file_quietly_with_its_newline_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("from-file\n")
    path.chmod(0o600)
    assert resolve(file=path, env={"LAMBDASCOPE_TOKEN": "env"}) == ("from-file", [])


def test_a_file_others_can_read_works_but_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("t")
    path.chmod(0o644)
    token, warnings = resolve(file=path)
    assert token == "t"
    assert warnings == [f"the token file {path} can be read by other users: chmod 600 {path}"]


def test_the_flag_works_but_says_it_is_visible_in_the_process_list() -> None:
    token, (warning,) = resolve(flag="on-the-command-line")
    assert token == "on-the-command-line"
    assert "visible to every user" in warning and "LAMBDASCOPE_TOKEN" in warning


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the token file"), ("\n", "is empty")],
)
def test_unusable_token_files_are_refused_by_name(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokenError, match=message):
        resolve(file=path)


def test_flag_and_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("x")
    with pytest.raises(TokenError, match="not both"):
        resolve(flag="y", file=path)


def test_a_reader_command_names_an_unusable_token_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdascope",
            "query",
            "SELECT 1",
            "--read-token-file",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
    )
    assert done.returncode == 2
    assert "lambdascope query: cannot read the token file" in done.stderr
