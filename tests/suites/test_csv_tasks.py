"""CSV task files and field mappings (``--tasks file.csv``, ``--map input=question``): the same
columns, size limits and one-line errors as JSONL."""
from __future__ import annotations

import json

import pytest

from fgo_cli.main import main
from fgo_engine.errors import ConfigError, TaskFileError
from fgo_engine.suites.base import load_suite
from fgo_engine.suites.jsonl_tasks import read_task_file, rows_from_objects


def write(tmp_path, text, name="tasks.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_columns_are_jsonl_fields_and_other_columns_go_to_meta(tmp_path):
    path = write(tmp_path, 'id,input,expected,category,split,source\n'
                           'a,"two, words","x ""quoted""",math,train,book\n'
                           'b,"a line\nand another",y,,test,web\n')
    rows = read_task_file(path)
    assert [(r.task.id, r.task.input, r.task.expected, r.task.category, r.split, r.line) for r in rows] == [
        ("a", "two, words", 'x "quoted"', "math", "train", 2),
        ("b", "a line\nand another", "y", "default", "test", 3)]
    assert rows[0].task.meta == {"source": "book"}


def test_a_meta_column_holds_a_json_object(tmp_path):
    path = write(tmp_path, 'id,input,expected,meta\na,q,x,"{""k"": 1}"\n')
    assert read_task_file(path)[0].task.meta == {"k": 1}
    bad = write(tmp_path, 'id,input,expected,meta\na,q,x,[1]\n', "bad.csv")
    with pytest.raises(TaskFileError, match=r"bad.csv, line 2: column 'meta' must hold a JSON object"):
        read_task_file(bad)


def test_a_mapping_names_the_columns_that_hold_the_fields(tmp_path):
    path = write(tmp_path, "qid,question,answer\n1,2+2?,4\n2,3+3?,6\n")
    rows = read_task_file(path, mapping={"id": "qid", "input": "question", "expected": "answer"})
    assert [(r.task.id, r.task.input, r.task.expected) for r in rows] == [("1", "2+2?", "4"), ("2", "3+3?", "6")]
    jsonl = write(tmp_path, json.dumps({"id": "a", "q": "2+2?", "a": "4"}) + "\n", "t.jsonl")
    assert read_task_file(jsonl, mapping={"input": "q", "expected": "a"})[0].task.input == "2+2?"
    assert rows_from_objects([{"id": "a", "q": "x", "expected": "y"}], mapping={"input": "q"})[0].task.input == "x"


@pytest.mark.parametrize("text, mapping, error", [
    ("id,question,expected\na,q,x\n", None,
     r"tasks.csv, line 1: missing column 'input'; the columns are id, question, expected"),
    ("id,question,expected\na,q,x\n", {"input": "prompt"}, r"missing column 'prompt' \(mapped to input\)"),
    ("id,input,expected\na,q,\n", None, r"tasks.csv, line 2: column 'expected' is empty"),
    ("id,input,expected\na,q,x\na,r,y\n", None, r"line 3: duplicate id 'a' \(first on line 2\)"),
    ("id,input,expected\na,q,x,extra\n", None, r"line 2: 4 cells but the header names 3 columns"),
    ("id,input,expected,split\na,q,x,dev\n", None, r"line 2: unknown split 'dev'"),
    ("id,input,id\na,q,x\n", None, r"column 'id' appears twice"),
    ("id,input,expected\n", None, r"no tasks \(the file has a header and nothing else\)"),
    ("", None, r"no tasks \(the file is empty\)"),
    ('id,input,expected\na,"q,x\n', None, r"line 2: "),
])
def test_bad_csv_files_are_one_line_errors(tmp_path, text, mapping, error):
    path = write(tmp_path, text)
    with pytest.raises(TaskFileError, match=error) as info:
        read_task_file(path, mapping=mapping)
    assert "\n" not in str(info.value)


def test_csv_size_limits_and_encoding(tmp_path, monkeypatch):
    from fgo_engine.suites import jsonl_tasks

    monkeypatch.setattr(jsonl_tasks, "MAX_TASK_BYTES", 64)
    path = write(tmp_path, "id,input,expected\na,q,x\nb," + "y" * 100 + ",z\n")
    with pytest.raises(TaskFileError, match=r"line 3: the task is larger than"):
        read_task_file(path)
    monkeypatch.setattr(jsonl_tasks, "MAX_FILE_BYTES", 10)
    with pytest.raises(TaskFileError, match=r"the limit is 0 MiB per file"):
        read_task_file(path)
    monkeypatch.undo()
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"id,input,expected\na,caf\xe9,x\n")
    with pytest.raises(TaskFileError, match=r"latin.csv, line 2: not valid UTF-8 text"):
        read_task_file(latin)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"id,input,expected\na,q\x00,x\n")
    with pytest.raises(TaskFileError, match=r"nul.csv, line 2: holds a NUL byte"):
        read_task_file(nul)


@pytest.mark.parametrize("mapping, error", [
    ({"question": "input"}, r"--map: unknown field 'question'; the fields are id, input, expected"),
    ({"input": ""}, r"--map input=…: give the name of the column"),
    ({"input": "q", "expected": "q"}, r"column 'q' is mapped to both input and expected"),
])
def test_a_bad_mapping_is_a_config_error(tmp_path, mapping, error):
    path = write(tmp_path, "id,input,expected\na,q,x\n")
    with pytest.raises(ConfigError, match=error):
        read_task_file(path, mapping=mapping)


def test_the_jsonl_suite_reads_csv_with_a_mapping(tmp_path):
    path = write(tmp_path, "qid,question,answer\n" + "".join(f"{i},q{i},a{i}\n" for i in range(8)))
    suite = load_suite("jsonl", path=str(path), mapping={"id": "qid", "input": "question", "expected": "answer"})
    assert len(suite.train_tasks()) == 6 and len(suite.test_tasks()) == 2


def test_fgo_run_takes_a_csv_file_and_map_flags(tmp_path, capsys):
    path = write(tmp_path, "question,answer,id\n" + "".join(f"q{i},a{i},t{i}\n" for i in range(8)))
    session = tmp_path / "s.db"
    code = main(["run", "--tasks", str(path), "--map", "input=question", "--map", "expected=answer",
                 "--model", "fgo-sim/medium", "--subsets", "2", "--epochs", "1", "--headless",
                 "--session", str(session)])
    assert code == 0, capsys.readouterr()
    import sqlite3

    con = sqlite3.connect(session)
    cfg = json.loads(con.execute("select config_json from session").fetchone()[0])
    assert cfg["suite_options"]["mapping"] == {"input": "question", "expected": "answer"}
    assert con.execute("select count(*) from tasks").fetchone()[0] == 8
    con.close()


@pytest.mark.parametrize("argv, needle", [
    (["--map", "input=prompt"], "missing column 'prompt' (mapped to input)"),
    (["--map", "question"], "--map: write FIELD=COLUMN"),
    (["--map", "bogus=question"], "--map: unknown field 'bogus'"),
])
def test_fgo_run_bad_map_is_one_line_and_writes_nothing(tmp_path, capsys, argv, needle):
    path = write(tmp_path, "question,answer,id\nq,a,t\n")
    session = tmp_path / "s.db"
    assert main(["run", "--tasks", str(path), *argv, "--headless", "--session", str(session)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not session.exists()


def test_map_without_a_task_file_is_refused(tmp_path, capsys):
    assert main(["run", "--suite", "toy", "--map", "input=q", "--headless", "--session",
                 str(tmp_path / "s.db")]) == 2
    assert "--map names the columns of a task file" in capsys.readouterr().err
