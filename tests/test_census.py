"""Caption census: matching rules, readers, local engine, outputs, CLI, and real captions."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import tracemalloc
import unicodedata
import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from idia.census import (
    BIN_EDGES,
    CensusInputError,
    CensusWorkerError,
    CountedName,
    MissingColumnError,
    NameMatcher,
    bin_label,
    count_names,
    membership_table,
    normalize_text,
    read_people,
    readers,
    run_census,
)
from idia.census.local import ScanOptions, run_local
from idia.census.matcher import SPECIAL_LETTERS
from idia.census.readers import expand_inputs, iter_caption_batches
from idia.cli import app
from idia.membership import PartialMembershipWarning, read_membership

SHARED_CAPTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "captions"
PAPER_NAMES = "laion400m_name_counts_paper.csv"


def shared_file(name: str) -> Path:
    path = SHARED_CAPTIONS / name
    if not path.exists():
        pytest.skip(f"reference data absent: {path}")
    return path


# A deliberately slow reference: per caption and per name, straight from the documented rules.


def reference_words(text: str, *, case_sensitive: bool = False, fold_accents: bool = True) -> str:
    text = unicodedata.normalize("NFKD" if fold_accents else "NFC", text)
    if not case_sensitive:
        text = text.lower().replace("ς", "σ")  # both sigmas match in either position
    characters = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cf" or (fold_accents and category == "Mn"):
            continue
        char = SPECIAL_LETTERS.get(char, char) if fold_accents else char
        characters.append(char if category[0] in "LNM" else " ")
    return " ".join("".join(characters).split())


def reference_counts(captions: list[str | None], people: list[CountedName], **rules: bool) -> dict:
    words = [f" {reference_words(caption or '', **rules)} " for caption in captions]
    counts = {}
    for person in people:
        spellings = [f" {reference_words(spelling, **rules)} " for spelling in person.spellings]
        counts[person.name] = sum(
            any(spelling in caption for spelling in spellings) for caption in words
        )
    return counts


def matched(names: list[str | CountedName], caption: str, **rules: bool) -> list[str]:
    return NameMatcher(names, **rules).names_in(caption)


# Matching rules


@pytest.mark.parametrize(
    ("name", "caption", "expected"),
    [
        ("Brad Pitt", "BRAD PITT at Cannes", True),
        ("Brad Pitt", "brad pitt", True),
        ("Adrianne León", "Adrianne Leon on the red carpet", True),
        ("Adrianne Leon", "ADRIANNE LEÓN", True),
        ("Adrianne León", "Adrianne Le\u0301on", True),  # decomposed accent
        ("Søren Kierkegaard", "soren kierkegaard quotes", True),
        ("Alexander Skarsgård", "Alexander Skarsgard", True),
        ("Ann Lee", "Ann Leeds", False),
        ("Ann Lee", "Joann Lee", False),
        ("Ann Lee", "Ann Lee's new album", True),
        ("Ann Lee", "(Ann Lee)", True),
        ("Ann Lee", "Ann\n   Lee", True),
        ("Ann Lee", "Ann Lee2", False),
        ("Johannes B. Kerner", "Johannes Bx Kerner", False),
        ("Johannes B. Kerner", "Johannes BB Kerner", False),
        ("Johannes B. Kerner", "Johannes B Kerner", True),
        ("Olivia d'Abo", "Olivia d’Abo", True),
        ("T.J. Thyne", "T. J. Thyne", True),
        ("A+ (B)", "A+ B", True),
        ("A+ (B)", "AAB", False),  # "+" is not a regex quantifier
        ("Brad Pitt", "Brad\u00adPitt", False),  # soft hyphen joins the words
        ("Brad Pitt", "Ｂｒａｄ Ｐｉｔｔ", True),  # full-width letters
    ],
)
def test_matching_rules(name: str, caption: str, expected: bool) -> None:
    assert (matched([name], caption) == [name]) is expected
    reference = reference_counts([caption], [CountedName(name)])[name]
    assert reference == int(expected)


def test_case_sensitive_option() -> None:
    assert matched(["Brad Pitt"], "brad pitt", case_sensitive=True) == []
    assert matched(["Brad Pitt"], "Brad Pitt", case_sensitive=True) == ["Brad Pitt"]
    assert matched(["Søren Ås"], "SOREN As", case_sensitive=True) == []
    assert matched(["Søren Ås"], "Soren As", case_sensitive=True) == ["Søren Ås"]


def test_keep_accents_option() -> None:
    assert matched(["Adrianne León"], "Adrianne Leon", fold_accents=False) == []
    assert matched(["Adrianne León"], "adrianne leo\u0301n", fold_accents=False) == [
        "Adrianne León"
    ]


def test_aliases_and_one_count_per_caption() -> None:
    people = [CountedName("Robert Downey Jr.", ("Robert Downey Jr", "RDJ"))]
    captions = [
        "Robert Downey Jr. and RDJ and Robert Downey Jr",
        "Brad Pitt, Brad Pitt, Brad Pitt",
        "RDJ",
        "Robert Downey",
    ]
    counts = NameMatcher([*people, "Brad Pitt"]).count(captions)
    assert counts.tolist() == [2, 1]


def test_overlapping_and_nested_names_are_all_counted() -> None:
    names = ["Mary Kate", "Kate Olsen", "Kate", "Mary Kate Olsen"]
    assert sorted(matched(names, "Mary Kate Olsen")) == sorted(names)


def test_names_never_span_two_captions() -> None:
    matcher = NameMatcher(["Brad Pitt", "Pitt"])
    rows, people = matcher.match_batch(["photo of Brad", "Pitt", None, "", "brad  pitt"])
    assert list(zip(rows.tolist(), people.tolist(), strict=True)) == [(1, 1), (4, 0), (4, 1)]


def test_people_with_the_same_spelling_are_both_counted() -> None:
    counts = NameMatcher(["Adrianne León", "Adrianne Leon"]).count(["adrianne leon"])
    assert counts.tolist() == [1, 1]


def test_name_without_letters_is_rejected() -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        NameMatcher(["Brad Pitt", "--"])


def test_matcher_survives_pickling() -> None:
    import pickle

    matcher = NameMatcher([CountedName("Robert Downey Jr.", ("RDJ",))], case_sensitive=True)
    copy = pickle.loads(pickle.dumps(matcher))
    assert copy.case_sensitive and copy.names_in("RDJ") == ["Robert Downey Jr."]
    assert copy.names_in("rdj") == []


WORDS = ["Ann", "Lee", "Leeds", "Mary", "Kate", "Olsen", "León", "LEON", "B.", "Jr", "Søren", "ǅ"]
SEPARATORS = [" ", "  ", "-", ".", ", ", "'s ", "\n", "\u00ad", "\u0301", "_", "—", "2"]


@settings(max_examples=300, deadline=None)
@given(
    captions=st.lists(
        st.lists(st.sampled_from(WORDS + SEPARATORS), max_size=12).map("".join), max_size=8
    ),
    case_sensitive=st.booleans(),
    fold_accents=st.booleans(),
)
def test_matcher_agrees_with_reference(
    captions: list[str], case_sensitive: bool, fold_accents: bool
) -> None:
    people = [
        CountedName("Ann Lee"),
        CountedName("Mary Kate"),
        CountedName("Kate Olsen"),
        CountedName("Adrianne León", ("Leon B.",)),
        CountedName("Søren Jr"),
    ]
    rules = {"case_sensitive": case_sensitive, "fold_accents": fold_accents}
    counts = NameMatcher(people, **rules).count(captions)
    assert dict(zip([p.name for p in people], counts.tolist(), strict=True)) == reference_counts(
        captions, people, **rules
    )


STABLE_CHARACTERS = [
    chr(code)
    for code in range(0x110000)
    if unicodedata.ucd_3_2_0.category(chr(code)) not in ("Cs", "Cn")
    and unicodedata.category(chr(code)) not in ("Cs", "Cn")
]
"""Characters assigned since Unicode 3.2: Python's and Arrow's Unicode tables may be of different
versions, but agree on these."""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(STABLE_CHARACTERS), max_size=40).map("".join))
def test_normalization_agrees_with_reference_on_any_text(text: str) -> None:
    assert normalize_text(text) == reference_words(text)


def test_final_sigma_matches_sigma_when_case_is_ignored() -> None:
    assert normalize_text("ΟΔΥΣΣΕΑΣ") == normalize_text("Οδυσσέας") == "οδυσσεασ"
    assert NameMatcher([CountedName("Οδυσσέας")]).count(["ΟΔΥΣΣΕΑΣ ήρθε", "AΣ"]).tolist() == [1]
    assert normalize_text("ς", case_sensitive=True) == "ς"


@pytest.mark.parametrize("case_sensitive", [False, True])
@pytest.mark.parametrize("fold_accents", [True, False])
def test_normalization_agrees_with_reference_on_every_code_point(
    case_sensitive: bool, fold_accents: bool
) -> None:
    from idia.census.matcher import normalize_batch

    texts = [
        f"a{character}b"
        for character in STABLE_CHARACTERS
        # Arrow lower-cases İ to i; Python to i + combining dot (folding removes the dot).
        if not (character == "İ" and not case_sensitive and not fold_accents)
    ]
    rules = {"case_sensitive": case_sensitive, "fold_accents": fold_accents}
    normalized = normalize_batch(texts, **rules).text.encode("latin-1").decode("utf-8")
    differ = [
        text
        for text, words in zip(texts, normalized.split("\n"), strict=False)
        if words.strip() != reference_words(text, **rules)
    ]
    assert differ == []


# Readers


def write_parquet(path: Path, captions: list[str | None], column: str = "TEXT") -> Path:
    urls = [f"https://example.com/{index}.jpg" for index in range(len(captions))]
    pq.write_table(pa.table({"URL": urls, column: captions}), path, row_group_size=40)
    return path


CAPTIONS = [
    f"caption {index} with Brad Pitt" if index % 3 == 0 else "a dog" for index in range(100)
]
BRAD_PITT_CAPTIONS = sum("Brad Pitt" in caption for caption in CAPTIONS)


def test_each_format_streams_bounded_batches(tmp_path: Path) -> None:
    write_parquet(tmp_path / "a.parquet", CAPTIONS)
    pd.DataFrame({"caption": CAPTIONS, "url": "u"}).to_csv(tmp_path / "b.csv", index=False)
    with gzip.open(tmp_path / "c.tsv.gz", "wt", encoding="utf-8") as stream:
        stream.writelines(
            f'{caption} "quoted\thttps://x.org/{i}\n' for i, caption in enumerate(CAPTIONS)
        )
    with (tmp_path / "d.jsonl").open("w", encoding="utf-8") as stream:
        stream.writelines(
            json.dumps({"caption": caption, "url": "u"}) + "\n" for caption in CAPTIONS
        )
    for path in sorted(tmp_path.iterdir()):
        batches = list(iter_caption_batches(path, batch_size=7))
        assert all(len(batch.text) <= 7 for batch in batches), path
        texts = [text for batch in batches for text in batch.text.to_pylist()]
        if path.name.startswith("c"):
            texts = [text.removesuffix(' "quoted') for text in texts]
        assert texts == CAPTIONS, path
        assert all(batch.url is not None for batch in batches), path


def test_headerless_tsv_reads_caption_then_url(tmp_path: Path) -> None:
    path = tmp_path / "cc.tsv"
    path.write_text("a photo of actor\thttp://x.org/1.jpg\nBrad Pitt\thttp://x.org/2.jpg\n")
    result = run_census(path, ["Brad Pitt"], examples=1)
    assert result.captions == 2 and result.counts["count"].tolist() == [1]
    assert result.examples[["url", "caption"]].values.tolist() == [
        ["http://x.org/2.jpg", "Brad Pitt"]
    ]


def test_numbered_column_for_headerless_files(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("1,Brad Pitt\n2,someone else\n")
    assert count_names(path, ["Brad Pitt"], column="1")["count"].tolist() == [1]


def test_malformed_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"caption": "Brad Pitt"}\nnot json\n[1]\n{"caption": null}\n')
    csv = tmp_path / "bad.csv"
    csv.write_text("caption,url\nBrad Pitt,u\ntoo,many,fields\n")
    result = run_census([jsonl, csv], ["Brad Pitt"])
    assert result.skipped_rows == 3 and result.captions == 3
    assert result.counts["count"].tolist() == [2]


def test_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "a.parquet", CAPTIONS, column="description")
    with pytest.raises(MissingColumnError, match="'URL', 'description'"):
        run_census(path, ["Brad Pitt"])
    with pytest.raises(MissingColumnError, match="column 'TEXT'"):
        run_census(path, ["Brad Pitt"], column="TEXT")
    assert count_names(path, ["Brad Pitt"], column="description")["count"].tolist() == [
        BRAD_PITT_CAPTIONS
    ]


def test_inputs_expand_folders_and_globs(tmp_path: Path) -> None:
    (tmp_path / "shards" / "deep").mkdir(parents=True)
    (tmp_path / "shards" / "_temporary").mkdir()
    for name in ("shards/0.parquet", "shards/deep/1.parquet", "shards/_temporary/2.parquet"):
        write_parquet(tmp_path / name, CAPTIONS)
    (tmp_path / "shards" / "_SUCCESS").write_text("")
    (tmp_path / "shards" / "notes.md").write_text("")
    found = expand_inputs([tmp_path / "shards"])
    assert [path.name for path in found] == ["0.parquet", "1.parquet"]
    globbed = expand_inputs([f"{tmp_path}/shards/**/*.parquet"])
    assert [path.name for path in globbed] == ["0.parquet", "2.parquet", "1.parquet"]
    assert expand_inputs([f"{tmp_path}/shards/**/*.parquet", tmp_path / "shards"]) == globbed
    with pytest.raises(CensusInputError, match="no files match"):
        expand_inputs([f"{tmp_path}/nothing*.parquet"])
    with pytest.raises(CensusInputError, match="unsupported caption format"):
        expand_inputs([tmp_path / "shards" / "notes.md"])


def test_unreadable_shard_is_reported_and_the_rest_counted(tmp_path: Path) -> None:
    good = [write_parquet(tmp_path / f"{index}.parquet", CAPTIONS) for index in range(3)]
    (tmp_path / "1.parquet").write_bytes(b"PAR1 this is not parquet")
    result = run_census(tmp_path, ["Brad Pitt"])
    assert result.shards_read == 2 and result.captions == 200
    assert [path for path, _ in result.skipped_shards] == [str(good[1])]
    assert result.counts["count"].tolist() == [2 * BRAD_PITT_CAPTIONS]


# Names input


def test_names_from_text_file_with_aliases_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text(
        "# people\nRobert Downey Jr.|Robert Downey Jr| RDJ \n\nBrad Pitt\nBrad Pitt|B.P.\n"
    )
    assert read_people(path) == [
        CountedName("Robert Downey Jr.", ("Robert Downey Jr", "RDJ")),
        CountedName("Brad Pitt", ("B.P.",)),
    ]


def test_files_with_a_byte_order_mark_read_the_same(tmp_path: Path) -> None:
    captions = tmp_path / "excel.csv"
    captions.write_text("caption,url\nBrad Pitt,u\n", encoding="utf-8-sig")
    for names_file, content in (("names.csv", "name\nBrad Pitt\n"), ("names.txt", "Brad Pitt\n")):
        names = tmp_path / names_file
        names.write_text(content, encoding="utf-8-sig")
        assert count_names(captions, names).values.tolist() == [["Brad Pitt", 1]]


def test_names_from_people_folder(tmp_path: Path) -> None:
    for name in ("Johannes_B._Kerner", "Brad Pitt", ".cache"):
        (tmp_path / name).mkdir()
    (tmp_path / "readme.txt").write_text("")
    assert [person.name for person in read_people(tmp_path)] == ["Brad Pitt", "Johannes B. Kerner"]


def test_names_from_csv_with_aliases(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    pd.DataFrame({"Name": ["Brad Pitt", "Ann Lee"], "aliases": ["B. Pitt|BP", None]}).to_csv(path)
    assert read_people(path) == [
        CountedName("Brad Pitt", ("B. Pitt", "BP")), CountedName("Ann Lee")
    ]


def test_names_from_the_papers_ground_truth_csv() -> None:
    paper = pd.read_csv(shared_file("laion400m_name_counts_paper.csv"))
    assert [person.name for person in read_people(SHARED_CAPTIONS / PAPER_NAMES)] == list(
        dict.fromkeys(paper["name"])
    )


@pytest.mark.parametrize("content", ["", "\n# only a comment\n", "name\n"])
def test_empty_names_are_rejected(tmp_path: Path, content: str) -> None:
    path = tmp_path / ("names.csv" if content.startswith("name") else "names.txt")
    path.write_text(content)
    with pytest.raises(CensusInputError, match="lists no names"):
        read_people(path)


@pytest.mark.parametrize("indent", [None, 2], ids=["one_line", "indented"])
def test_a_json_array_is_read_as_records(tmp_path: Path, indent: int | None) -> None:
    records = [{"caption": caption, "url": f"u{i}"} for i, caption in enumerate(CAPTIONS)]
    path = tmp_path / "export.json"
    path.write_text(json.dumps([*records, "not a record"], indent=indent))
    result = run_census(path, ["Brad Pitt"], batch_size=7)
    assert result.shards_read == 1 and result.captions == len(CAPTIONS)
    assert result.counts["count"].tolist() == [BRAD_PITT_CAPTIONS]
    assert result.skipped_rows == 1


def test_a_json_array_is_streamed_in_bounded_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "export.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        json.dump([{"caption": caption} for caption in CAPTIONS] + [12345], stream)
    monkeypatch.setattr(readers, "_JSON_CHUNK_CHARS", 5)  # elements straddle every chunk
    batches = list(iter_caption_batches(path, batch_size=7))
    assert [text for batch in batches for text in batch.text.to_pylist()] == CAPTIONS
    assert sum(batch.skipped_rows for batch in batches) == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('[{"caption": "Brad Pitt"}, {"caption": ', "truncated"),
        ('[{"caption": "Brad Pitt"} {"caption": "x"}]', "expected ','"),
        ('[{"caption": "Brad Pitt"}] [{"caption": "x"}]', "more after"),
    ],
)
def test_a_broken_json_array_skips_the_shard_with_a_reason(
    tmp_path: Path, content: str, reason: str
) -> None:
    (tmp_path / "broken.json").write_text(content)
    result = run_census(tmp_path / "broken.json", ["Brad Pitt"])
    assert result.shards_read == 0 and result.counts["count"].tolist() == [0]
    assert reason in result.skipped_shards[0][1]


def test_a_line_too_long_fails_its_shard_without_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_CHARS", 1 << 20)
    huge = tmp_path / "huge.jsonl"
    with huge.open("w", encoding="utf-8") as stream:
        stream.write(json.dumps({"caption": "Brad Pitt"}) + "\n")
        stream.write(json.dumps({"caption": "Brad Pitt " * (3 << 20)}) + "\n")  # 30 MB
    header = tmp_path / "header.csv"
    header.write_text("caption" * (1 << 18) + "\nBrad Pitt\n")
    tracemalloc.start()
    try:
        result = run_census([huge, header], ["Brad Pitt"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.shards_read == 0
    reasons = dict(result.skipped_shards)
    assert "line 2 is longer than 1,048,576 characters" in reasons[str(huge)]
    assert "line 1 is longer than" in reasons[str(header)]
    assert peak < 12 << 20


# Engine and outputs


def test_workers_give_the_same_result_as_one_process(tmp_path: Path) -> None:
    for index in range(4):
        write_parquet(tmp_path / f"{index}.parquet", [f"{c} #{index}" for c in CAPTIONS])
    names = ["Brad Pitt", "Nobody Here"]
    single = run_census(tmp_path, names, workers=1, examples=3)
    double = run_census(tmp_path, names, workers=2, examples=3)
    pd.testing.assert_frame_equal(single.counts, double.counts)
    pd.testing.assert_frame_equal(single.examples, double.examples)
    assert single.counts["count"].tolist() == [4 * BRAD_PITT_CAPTIONS, 0]
    assert len(single.examples) == 3
    assert all("Brad Pitt" in caption for caption in single.examples["caption"])
    assert single.examples["source"].tolist() == [str(tmp_path / "0.parquet")] * 3


class DyingMatcher(NameMatcher):
    """Kills its own process on a caption that says how: a worker the OOM killer takes."""

    def match_batch(self, texts):  # type: ignore[no-untyped-def]
        captions = texts.to_pylist()
        if "die by exit" in captions:
            os._exit(3)
        if "die by SIGKILL" in captions:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().match_batch(texts)


@pytest.mark.timeout(180)  # before the fix the census waited forever for the dead worker
@pytest.mark.parametrize("death", ["exit", "SIGKILL"])
def test_a_dead_worker_stops_the_census(tmp_path: Path, death: str) -> None:
    shards = [write_parquet(tmp_path / f"{index}.parquet", CAPTIONS) for index in range(3)]
    write_parquet(shards[1], [*CAPTIONS, f"die by {death}"])
    with pytest.raises(CensusWorkerError, match="worker process died"):
        run_local(DyingMatcher(["Brad Pitt"]), shards, ScanOptions(), workers=2)


def test_membership_bins_follow_the_paper() -> None:
    counts = pd.DataFrame({"name": list("abcdefg"), "count": [0, 1, 24, 25, 175, 299, 10_000]})
    table = membership_table(counts)
    assert table["member"].tolist() == [False] + [True] * 6
    assert table["membership"].tolist() == ["non_member"] + ["member"] * 6
    assert table["bin"].tolist() == [
        "[0, 25)",
        "[0, 25)",
        "[0, 25)",
        "[25, 50)",
        "[150, 200)",
        "[275, 300)",
        "[300, inf)",
    ]
    assert [bin_label(edge) for edge in BIN_EDGES][-1] == "[300, inf)"


def test_membership_table_is_accepted_by_the_audit(tmp_path: Path) -> None:
    from idia.census import write_table
    from idia.membership import read_membership

    counts = pd.DataFrame({"name": ["Ann Lee", "Brad Pitt"], "count": [0, 30]})
    for suffix in (".csv", ".parquet"):
        path = write_table(membership_table(counts), tmp_path / f"membership{suffix}")
        table = read_membership(path)
        assert table["member"].tolist() == [False, True]
        assert table["count"].tolist() == [0, 30]


def test_bins_match_the_papers_ground_truth() -> None:
    paper = pd.read_csv(shared_file(PAPER_NAMES))
    ours = membership_table(paper[["name", "count"]])
    assert (ours["membership"] == paper["membership"]).all()
    assert (ours["bin"].str.replace("inf", "1000000") == paper["bin"]).all()


# Command line

runner = CliRunner()


def count_names_cli(tmp_path: Path, *options: str) -> tuple[object, Path]:
    """``idia count-names`` over a readable and an unreadable shard, for Brad Pitt and Ann Lee."""
    write_parquet(tmp_path / "0.parquet", CAPTIONS)
    (tmp_path / "1.parquet").write_bytes(b"garbage")
    names = tmp_path / "names.txt"
    names.write_text("Brad Pitt\nAnn Lee\n")
    out = tmp_path / "out" / "counts.parquet"
    arguments = ["count-names", str(tmp_path / "*.parquet"), "--names", str(names)]
    result = runner.invoke(app, [*arguments, "--out", str(out), "--no-progress", *options])
    return result, out


def test_cli_writes_no_membership_when_a_shard_was_skipped(tmp_path: Path) -> None:
    result, out = count_names_cli(tmp_path, "--examples", "2")
    assert result.exit_code == 2, result.output
    assert "skipped" in result.output and "1.parquet" in result.output
    assert "1 of 2 shards could not be read, so no membership table" in result.output
    assert "--allow-partial" in result.output and "Traceback" not in result.output
    assert not out.with_name("counts.membership.parquet").exists()
    counts = pd.read_parquet(out)
    assert counts["partial"].all()
    with pytest.warns(PartialMembershipWarning):  # counts can serve as ground truth too
        read_membership(out)
    assert len(pd.read_parquet(out.with_name("counts.examples.parquet"))) == 2
    summary = json.loads(out.with_name("counts.summary.json").read_text())
    assert summary["partial"] is True and summary["membership"] is None


def test_cli_allow_partial_writes_a_membership_table_marked_partial(tmp_path: Path) -> None:
    result, out = count_names_cli(tmp_path, "--examples", "2", "--workers", "1", "--allow-partial")
    assert result.exit_code == 0, result.output
    assert "1.parquet" in result.output and "skipped 1 unreadable shard" in result.output
    assert pd.read_parquet(out)[["name", "count"]].values.tolist() == [
        ["Ann Lee", 0],
        ["Brad Pitt", BRAD_PITT_CAPTIONS],
    ]
    membership_path = out.with_name("counts.membership.parquet")
    membership = pd.read_parquet(membership_path)
    assert membership["member"].tolist() == [False, True] and membership["partial"].all()
    with pytest.warns(PartialMembershipWarning, match="marked partial"):
        assert read_membership(membership_path)["member"].tolist() == [False, True]
    assert len(pd.read_parquet(out.with_name("counts.examples.parquet"))) == 2
    summary = json.loads(out.with_name("counts.summary.json").read_text())
    assert summary["partial"] is True and summary["membership"] == str(membership_path)
    assert summary["shards_read"] == 1 and summary["shards_skipped"][0]["path"].endswith(
        "1.parquet"
    )


def test_cli_complete_census_is_not_marked_partial(tmp_path: Path) -> None:
    write_parquet(tmp_path / "0.parquet", CAPTIONS)
    names = tmp_path / "names.txt"
    names.write_text("Brad Pitt\n")
    out = tmp_path / "counts.csv"
    arguments = ["count-names", str(tmp_path), "--names", str(names), "--out", str(out)]
    result = runner.invoke(app, [*arguments, "--no-progress"])
    assert result.exit_code == 0, result.output
    membership = pd.read_csv(out.with_name("counts.membership.csv"))
    assert list(membership.columns) == ["name", "count", "member", "membership", "bin"]
    assert json.loads(out.with_name("counts.summary.json").read_text())["partial"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_membership(out.with_name("counts.membership.csv"))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_column", "columns found: 'URL', 'description'"),
        ("empty_names", "lists no names"),
        ("no_shards", "no files match"),
        ("all_unreadable", "no shard could be read"),
        ("bad_out", "output must end in"),
    ],
)
def test_cli_bad_input_is_a_clear_message(tmp_path: Path, setup: str, message: str) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    write_parquet(
        shards / "0.parquet", CAPTIONS, "description" if setup == "missing_column" else "TEXT"
    )
    if setup == "all_unreadable":
        (shards / "0.parquet").write_bytes(b"garbage")
    names = tmp_path / "names.txt"
    names.write_text("" if setup == "empty_names" else "Brad Pitt\n")
    source = str(tmp_path / "none*.parquet") if setup == "no_shards" else str(shards)
    out = tmp_path / ("counts.xlsx" if setup == "bad_out" else "counts.csv")
    result = runner.invoke(
        app, ["count-names", source, "--names", str(names), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


# Real captions


def test_laion_sample_matches_the_reference_for_the_papers_people() -> None:
    captions_path = shared_file("laion400m_sample_10000.parquet")
    people = read_people(shared_file(PAPER_NAMES))
    captions = pq.read_table(captions_path, columns=["TEXT"]).column("TEXT").to_pylist()
    expected = reference_counts(captions, people)
    counts = count_names(captions_path, people, batch_size=1_000)
    assert dict(zip(counts["name"], counts["count"], strict=True)) == expected
    assert sum(expected.values()) > 0  # the sample does mention some of the paper's people


def test_laion_sample_finds_every_exact_whole_word_mention() -> None:
    captions_path = shared_file("laion400m_sample_10000.parquet")
    people = read_people(shared_file(PAPER_NAMES))
    captions = pd.read_parquet(captions_path)["TEXT"].fillna("")
    counts = count_names(captions_path, people).set_index("name")["count"]
    for person in people:
        pattern = rf"\b{re.escape(person.name)}\b"
        exact_whole_word_hits = captions.str.contains(pattern, regex=True).sum()
        assert counts[person.name] >= exact_whole_word_hits, person.name


def test_cc3m_is_a_negative_control() -> None:
    path = shared_file("cc3m_validation.tsv")
    rows = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line)
    result = run_census(path, shared_file(PAPER_NAMES))
    assert result.captions == rows and result.skipped_rows == 0
    assert result.counts["count"].sum() == 0
    generic = run_census(path, ["actor", "actress", "person"])
    assert (generic.counts["count"] > 0).all()  # the hypernyms that replaced the names
