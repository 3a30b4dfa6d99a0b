"""Inputs of the census: caption shards read in bounded batches, and the list of people.

Caption shards are Parquet (LAION metadata), CSV/TSV (CC3M's headerless ``caption<TAB>url``),
JSON Lines or a JSON array of records, optionally compressed (``.gz``, ``.bz2``, ``.zst``,
``.lz4`` for the text formats). Every reader yields Arrow batches of at most ``batch_size`` rows
and holds at most ``MAX_RECORD_CHARS`` of one record's text, so memory does not grow with the
size of a shard, nor with a file that is one enormous line.
"""

from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from idia.census.matcher import CensusInputError, CountedName
from idia.names import display_name

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")
TEXT_COLUMNS = ("TEXT", "caption")
URL_COLUMNS = ("URL", "url")
HEADERLESS_PAIR = ("caption", "url")
"""Column names given to a headerless two-column file whose second column holds URLs: the layout
of Conceptual Captions' TSV files."""

DEFAULT_BATCH_SIZE = 65_536
_CSV_BLOCK_BYTES = 16 << 20
MAX_RECORD_CHARS = 16 << 20
"""Longest line (JSON Lines, a CSV header) or JSON array element read; a longer one fails the
shard with a reason instead of being held in memory whole."""
_JSON_CHUNK_CHARS = 1 << 20
_JSON_WHITESPACE = " \t\r\n"


class MissingColumnError(CensusInputError):
    """The caption column is not in a shard."""

    def __init__(self, path: Path | str, wanted: str | None, found: Sequence[str]) -> None:
        missing = (
            f"column {wanted!r}" if wanted else f"caption column ({' or '.join(TEXT_COLUMNS)})"
        )
        listed = ", ".join(repr(name) for name in found) or "none"
        super().__init__(f"{path}: no {missing}; columns found: {listed}")
        self.found = list(found)


@dataclass(frozen=True)
class CaptionBatch:
    """Up to ``batch_size`` captions of one shard, with their URLs when the shard has them."""

    text: pa.Array
    url: pa.Array | None
    skipped_rows: int = 0  # malformed rows the reader dropped since the previous batch


def shard_format(path: Path | str) -> str | None:
    """The caption format a file name announces, or None for files that are not caption shards."""
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
        if suffixes and FORMATS.get(suffixes[-1]) == "parquet":
            return None
    return FORMATS.get(suffixes[-1]) if suffixes else None


def _is_hidden(path: Path) -> bool:
    return path.name.startswith((".", "_"))


def _shards_in_folder(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and shard_format(path)
        and not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
    )


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files, globs (``**`` allowed) and folders of shards, as a sorted-within-argument list
    without duplicates. Folders contribute only files with a caption format's extension."""
    shards: list[Path] = []
    for item in inputs:
        text = str(item)
        if glob.has_magic(text):
            matches = sorted(Path(match) for match in glob.glob(text, recursive=True))
            if not matches:
                raise CensusInputError(f"no files match {text}")
        else:
            matches = [Path(text)]
            if not matches[0].exists():
                raise CensusInputError(f"no such file or folder: {text}")
        for match in matches:
            if match.is_dir():
                shards.extend(_shards_in_folder(match))
            elif shard_format(match):
                shards.append(match)
            elif not glob.has_magic(text):
                raise CensusInputError(
                    f"{match}: unsupported caption format; expected one of "
                    f"{', '.join(sorted(FORMATS))} (text formats may be compressed)"
                )
    unique = list(dict.fromkeys(path.resolve() for path in shards))
    if not unique:
        raise CensusInputError(f"no caption shards found in {', '.join(map(str, inputs))}")
    return unique


def _pick(found: Sequence[str], requested: str | None, defaults: Sequence[str]) -> str | None:
    if requested is not None:
        return requested if requested in found else None
    for name in defaults:
        if name in found:
            return name
    lowered = {name.lower(): name for name in found}
    return next((lowered[name.lower()] for name in defaults if name.lower() in lowered), None)


def _resolve_columns(
    path: Path,
    found: Sequence[str],
    column: str | None,
    url_column: str | None,
    with_urls: bool = True,
) -> tuple[str, str | None]:
    """The caption column and, when wanted and present, the URL column."""
    text = _pick(found, column, TEXT_COLUMNS)
    if text is None:
        raise MissingColumnError(path, column, found)
    url = _pick(found, url_column, URL_COLUMNS)
    if url_column is not None and url is None:
        raise MissingColumnError(path, url_column, found)
    return text, url if with_urls else None


def _open_text(path: Path) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        pa.input_stream(str(path), compression="detect"), encoding="utf-8", newline=""
    )


def _delimited_layout(path: Path, delimiter: str, column: str | None) -> tuple[list[str], bool]:
    """Column names of a CSV/TSV file and whether its first row is a header.

    The first row is a header, except when the requested column is a number (columns are then
    numbered from 0) or when the first row is a caption followed by a URL (Conceptual Captions'
    layout, columns named caption and url).
    """
    with _open_text(path) as stream:
        first_line = _bounded_line(stream, path, 1).removeprefix("\ufeff")
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    first_row = [
        cell.strip()
        for cell in next(csv.reader([first_line], delimiter=delimiter, quoting=quoting), [])
    ]
    if column is not None and column.isdigit():
        return [str(index) for index in range(len(first_row))], False
    if column is not None and column in first_row:
        return first_row, True
    if len(first_row) == 2 and first_row[1].lower().startswith(("http://", "https://")):
        return list(HEADERLESS_PAIR), False
    return first_row, True


def shard_columns(path: Path, column: str | None = None) -> list[str]:
    """The column names a shard offers (cheap: reads a footer, a line or a record)."""
    kind = shard_format(path)
    if kind == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    if kind in ("csv", "tsv"):
        return _delimited_layout(path, "," if kind == "csv" else "\t", column)[0]
    for record in _json_records(path):
        return list(record) if isinstance(record, dict) else []
    return []


def check_columns(
    path: Path, column: str | None = None, url_column: str | None = None
) -> tuple[str, str | None]:
    """The caption and URL columns a shard would be read with; MissingColumnError otherwise."""
    return _resolve_columns(path, shard_columns(path, column), column, url_column)


def _parquet_batches(
    path: Path, column: str | None, url_column: str | None, with_urls: bool, batch_size: int
) -> Iterator[CaptionBatch]:
    # No pre-buffering: it would read a whole file's column chunks into memory at once.
    parquet = pq.ParquetFile(path, pre_buffer=False)
    found = parquet.schema_arrow.names
    text, url = _resolve_columns(path, found, column, url_column, with_urls)
    columns = [text] if url is None else [text, url]
    for batch in parquet.iter_batches(batch_size=batch_size, columns=columns, use_threads=False):
        yield CaptionBatch(batch.column(0), batch.column(1) if url else None)


def _delimited_batches(
    path: Path,
    delimiter: str,
    column: str | None,
    url_column: str | None,
    with_urls: bool,
    batch_size: int,
) -> Iterator[CaptionBatch]:
    names, has_header = _delimited_layout(path, delimiter, column)
    text, url = _resolve_columns(path, names, column, url_column, with_urls)
    columns = [text] if url is None else [text, url]
    dropped = 0

    def skip_malformed(_row: object) -> str:
        nonlocal dropped
        dropped += 1
        return "skip"

    quoted = delimiter == ","
    reader = pacsv.open_csv(
        pa.input_stream(str(path), compression="detect"),
        read_options=pacsv.ReadOptions(
            use_threads=False,
            block_size=_CSV_BLOCK_BYTES,
            column_names=None if has_header else names,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if quoted else False,
            newlines_in_values=quoted,
            invalid_row_handler=skip_malformed,
        ),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns,
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    reported = 0
    for record_batch in reader:
        for start in range(0, record_batch.num_rows, batch_size):
            part = record_batch.slice(start, batch_size)
            yield CaptionBatch(
                part.column(0), part.column(1) if url else None, skipped_rows=dropped - reported
            )
            reported = dropped
    if dropped > reported:
        yield CaptionBatch(pa.array([], pa.string()), None, skipped_rows=dropped - reported)


class _PrefixedText:
    """A text stream with text already read from it put back in front."""

    def __init__(self, prefix: str, stream: io.TextIOBase) -> None:
        self.prefix, self.stream = prefix, stream

    def readline(self, limit: int) -> str:
        if not self.prefix:
            return self.stream.readline(limit)
        end = self.prefix.find("\n", 0, limit)
        cut = limit if end < 0 else end + 1
        line, self.prefix = self.prefix[:cut], self.prefix[cut:]
        if line.endswith("\n") or len(line) >= limit or self.prefix:
            return line
        return line + self.stream.readline(limit - len(line))


def _bounded_line(stream: io.TextIOBase | _PrefixedText, path: Path, number: int) -> str:
    """The next line of ``stream`` ('' at the end), refusing to hold more than
    ``MAX_RECORD_CHARS`` of it."""
    line = stream.readline(MAX_RECORD_CHARS + 1)
    if len(line) > MAX_RECORD_CHARS and not line.endswith("\n"):
        raise CensusInputError(
            f"{path}: line {number:,} is longer than {MAX_RECORD_CHARS:,} characters "
            "(not one record per line?)"
        )
    return line


def _json_line_records(stream: _PrefixedText, path: Path, number: int) -> Iterator[object | None]:
    """One decoded value per non-blank line from line ``number`` on; None for a line that is
    not JSON."""
    while line := _bounded_line(stream, path, number):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield None
        number += 1


def _json_array_records(stream: io.TextIOBase, path: Path, head: str) -> Iterator[object]:
    """The elements of a JSON array, decoded one at a time from a buffer that holds at most
    about one element plus ``_JSON_CHUNK_CHARS``, however long the file or its lines."""
    decoder = json.JSONDecoder()
    buffer, position, at_end = head, 0, False

    def read_more() -> bool:
        nonlocal buffer, position, at_end
        chunk = "" if at_end else stream.read(_JSON_CHUNK_CHARS)
        at_end = not chunk
        buffer, position = buffer[position:] + chunk, 0
        return bool(chunk)

    def next_character() -> str:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in _JSON_WHITESPACE:
                position += 1
            if position < len(buffer) or not read_more():
                return buffer[position : position + 1]

    def invalid(reason: str) -> CensusInputError:
        return CensusInputError(f"{path}: not a valid JSON array: {reason}")

    if next_character() != "[":
        raise invalid("it does not start with '['")
    position += 1
    if next_character() == "]":
        position += 1
    else:
        while True:
            if not next_character():
                raise invalid("it ends before its closing ']' (truncated?)")
            while True:  # decode one element, reading more until it is complete
                try:
                    value, end = decoder.raw_decode(buffer, position)
                    if end < len(buffer) or at_end:  # a number may continue in the next chunk
                        break
                except json.JSONDecodeError as error:
                    if at_end and error.pos >= len(buffer):
                        raise invalid("it ends inside an element (truncated?)") from None
                    if at_end:
                        raise invalid(error.msg) from None
                if len(buffer) - position > MAX_RECORD_CHARS:
                    raise invalid(
                        f"an element is malformed or longer than {MAX_RECORD_CHARS:,} characters"
                    )
                read_more()
            yield value
            position = end
            separator = next_character()
            position += 1
            if separator == "]":
                break
            if not separator:
                raise invalid("it ends before its closing ']' (truncated?)")
            if separator != ",":
                raise invalid(f"expected ',' or ']' between elements, found {separator!r}")
    if next_character():
        raise invalid("there is more after its closing ']'")


def _json_records(path: Path) -> Iterator[object | None]:
    """The records of a JSON Lines file, or of a file holding one JSON array (whatever its
    extension: a ``.json`` export is usually an array); None for a line that is not JSON."""
    with _open_text(path) as stream:
        head, blank_lines = stream.read(_JSON_CHUNK_CHARS).removeprefix("\ufeff"), 0
        while head and not head.strip():  # only whitespace so far: drop it, look further
            blank_lines += head.count("\n")
            head = stream.read(_JSON_CHUNK_CHARS)
        if head.lstrip().startswith("["):
            yield from _json_array_records(stream, path, head)
        else:
            yield from _json_line_records(_PrefixedText(head, stream), path, blank_lines + 1)


def _jsonl_batches(
    path: Path, column: str | None, url_column: str | None, with_urls: bool, batch_size: int
) -> Iterator[CaptionBatch]:
    text: str | None = None
    url: str | None = None
    texts: list[str | None] = []
    urls: list[str | None] = []
    dropped = 0

    def flush() -> CaptionBatch:
        nonlocal texts, urls, dropped
        batch = CaptionBatch(
            pa.array(texts, pa.large_string()),
            pa.array(urls, pa.large_string()) if url else None,
            skipped_rows=dropped,
        )
        texts, urls, dropped = [], [], 0
        return batch

    for record in _json_records(path):
        if not isinstance(record, dict):
            dropped += 1
            continue
        if text is None:
            text, url = _resolve_columns(path, list(record), column, url_column, with_urls)
        caption = record.get(text)
        texts.append(None if caption is None else str(caption))
        if url:
            link = record.get(url)
            urls.append(None if link is None else str(link))
        if len(texts) >= batch_size:
            yield flush()
    if texts or dropped:
        yield flush()


def iter_caption_batches(
    path: Path | str,
    *,
    column: str | None = None,
    url_column: str | None = None,
    with_urls: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[CaptionBatch]:
    """Stream a shard's captions (and URLs, unless ``with_urls`` is false: long URLs cost more
    to read than the captions) in batches of at most ``batch_size`` rows."""
    path = Path(path)
    kind = shard_format(path)
    if kind == "parquet":
        return _parquet_batches(path, column, url_column, with_urls, batch_size)
    if kind in ("csv", "tsv"):
        delimiter = "," if kind == "csv" else "\t"
        return _delimited_batches(path, delimiter, column, url_column, with_urls, batch_size)
    if kind == "jsonl":
        return _jsonl_batches(path, column, url_column, with_urls, batch_size)
    raise CensusInputError(f"{path}: unsupported caption format")


def _person_from_line(line: str) -> CountedName | None:
    spellings = [part.strip() for part in line.split("|")]
    spellings = [spelling for spelling in spellings if spelling]
    if not spellings:
        return None
    return CountedName(spellings[0], tuple(spellings[1:]))


def _people_from_table(path: Path) -> list[CountedName]:
    separator = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = pd.read_csv(path, sep=separator, dtype=str, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CensusInputError(f"{path}: not a readable CSV ({err})") from err
    lowered = {str(name).strip().lower(): name for name in table.columns}
    if "name" not in lowered:
        raise CensusInputError(
            f"{path}: no 'name' column; columns found: {', '.join(map(str, table.columns))}"
        )
    aliases = table[lowered["aliases"]] if "aliases" in lowered else None
    people = []
    for row, name in enumerate(table[lowered["name"]]):
        alias_text = aliases.iloc[row] if aliases is not None else None
        line = str(name) if pd.isna(alias_text) else f"{name}|{alias_text}"
        if not pd.isna(name) and (person := _person_from_line(line)):
            people.append(person)
    return people


def _merge_duplicates(people: list[CountedName]) -> list[CountedName]:
    """One entry per display name; aliases given on several lines are all kept."""
    aliases: dict[str, list[str]] = {}
    for person in people:
        known = aliases.setdefault(person.name, [])
        known.extend(alias for alias in person.aliases if alias not in known)
    return [CountedName(name, tuple(extra)) for name, extra in aliases.items()]


def read_people(path: Path | str) -> list[CountedName]:
    """People to count, from a text file (``Name|Alias|...`` per line, ``#`` comments), a CSV/TSV
    with a ``name`` column (and optional ``aliases`` column, ``|``-separated), or a people folder
    (one subfolder per person, underscores read as spaces)."""
    path = Path(path)
    if not path.exists():
        raise CensusInputError(f"names: no such file or folder: {path}")
    if path.is_dir():
        people = [
            CountedName(display_name(sub.name))
            for sub in sorted(path.iterdir())
            if sub.is_dir() and not _is_hidden(sub) and display_name(sub.name)
        ]
    elif path.suffix.lower() in (".csv", ".tsv"):
        try:
            people = _people_from_table(path)
        except pd.errors.EmptyDataError:
            people = []
    else:
        with path.open(encoding="utf-8-sig") as stream:
            lines = [line for line in stream if not line.lstrip().startswith("#")]
        people = [person for line in lines if (person := _person_from_line(line))]
    if not people:
        raise CensusInputError(f"names: {path} lists no names")
    return _merge_duplicates(people)
