"""Reads a multipart/form-data upload as it streams in: the one file part goes straight to the blob
store's temporary file with its size counted, so a file over the limit is refused at the limit (413),
never held whole in memory; the few small text fields beside it (`item`, `csrf`) are kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from workflow.errors import FileTooLarge, InvalidInput
from workflow.persistence.attachment_store import Received, TooLarge, Upload

MAX_FIELD = 4096  # bytes of a text field beside the file
MAX_FIELDS = 20


@dataclass
class ParsedUpload:
    filename: str = ""
    received: Received | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _Reader:
    def __init__(self, new_upload: Callable[[], Upload], file_field: str) -> None:
        self.new_upload = new_upload
        self.file_field = file_field
        self.result = ParsedUpload()
        self.upload: Upload | None = None
        self.error: Exception | None = None
        self._field, self._value = bytearray(), bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._text: bytearray | None = None
        self._in_file = False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self._headers[bytes(self._field).lower()] = bytes(self._value)
        self._field, self._value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        self._in_file = b"filename" in params and self._name == self.file_field
        self._text = None
        if self._in_file:
            if self.upload is not None or self.result.received is not None:
                self.error = InvalidInput(f"send one file per upload, in the part named {self.file_field!r}")
                return
            self.result.filename = params[b"filename"].decode("utf-8", "replace")
            self.upload = self.new_upload()
        elif b"filename" not in params:
            if len(self.result.fields) >= MAX_FIELDS:
                self.error = InvalidInput(f"at most {MAX_FIELDS} fields beside the file")
            self._text = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self._in_file and self.upload is not None:
            try:
                self.upload.write(data[start:end])
            except TooLarge as exc:
                self.upload = None
                self.error = FileTooLarge(self.result.filename or "file", exc.limit)
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD:
                self.error = InvalidInput(f"field {self._name!r} may be at most {MAX_FIELD} bytes")

    def part_end(self) -> None:
        if self.error is not None:
            return
        if self._in_file and self.upload is not None:
            self.result.received = self.upload.finish()
            self.upload = None
        elif self._text is not None:
            self.result.fields[self._name] = self._text.decode("utf-8", "replace")
        self._headers = {}
        self._in_file, self._text = False, None

    def part_begin(self) -> None:
        self._headers = {}

    def abort(self) -> None:
        if self.upload is not None:
            self.upload.abort()
            self.upload = None
        if self.result.received is not None:
            self.result.received.path.unlink(missing_ok=True)
            self.result.received = None


async def read_upload(request: Request, new_upload: Callable[[], Upload], file_field: str = "file") -> ParsedUpload:
    """The file and fields of a multipart body; the file left as a received (temporary) file."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidInput(f"send the file as multipart/form-data, in a part named {file_field!r}")
    reader = _Reader(new_upload, file_field)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": reader.part_begin,
            "on_header_field": reader.header_field,
            "on_header_value": reader.header_value,
            "on_header_end": reader.header_end,
            "on_headers_finished": reader.headers_finished,
            "on_part_data": reader.part_data,
            "on_part_end": reader.part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if reader.error is not None:
                raise reader.error
        parser.finalize()
    except BaseException as exc:
        reader.abort()
        if isinstance(exc, InvalidInput):
            raise
        if isinstance(exc, Exception) and type(exc).__module__.startswith("python_multipart"):
            raise InvalidInput(f"the multipart body cannot be read: {exc}") from None
        raise
    if reader.error is not None:
        reader.abort()
        raise reader.error
    if reader.result.received is None:
        raise InvalidInput(f"no file: send it in a multipart part named {file_field!r}")
    return reader.result
