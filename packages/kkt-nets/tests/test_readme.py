"""Every snippet of the README runs: Python blocks execute, commands parse."""

import re
import shlex
from pathlib import Path

import pytest

from kkt_nets.data.generate_instances import build_parser as generate_parser
from kkt_nets.evaluate import build_parser as evaluate_parser
from kkt_nets.solver import build_parser as solve_parser
from kkt_nets.train import build_parser as train_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PARSERS = {
    "kkt-generate": generate_parser,
    "kkt-train": train_parser,
    "kkt-evaluate": evaluate_parser,
    "kkt-solve": solve_parser,
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("code", blocks("python"))
def test_python_snippets_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})


def commands() -> list[str]:
    joined = [block.replace("\\\n", " ") for block in blocks("bash")]
    lines = [
        line.split("#")[0].strip() for block in joined for line in block.splitlines()
    ]
    return [line for line in lines if line.split(" ")[0] in PARSERS]


@pytest.mark.parametrize("line", commands())
def test_command_lines_parse(line):
    program, *argv = shlex.split(line)
    PARSERS[program]().parse_args(argv)


def test_every_console_script_appears():
    assert {line.split(" ")[0] for line in commands()} == set(PARSERS)
