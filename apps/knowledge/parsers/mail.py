"""E-mail: .eml (the standard library) and Outlook .msg (extract-msg).

The message's text is its header block (subject, from, to, cc, date; also kept as
metadata) and its body, plain text preferred over HTML. Attachments are handed back
as files: ingestion makes each its own document, linked to the message. A message that
carries messages is refused past MAX_DEPTH levels, inside one file or across attachments
(ingestion counts the parents).
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from apps.knowledge.parsers.base import (
    Attachment,
    ParsedDocument,
    ParseError,
    TextAssembler,
    collapse_title,
)
from apps.knowledge.parsers.html import parse_html_text

EML_MIME = "message/rfc822"
MSG_MIME = "application/vnd.ms-outlook"
MAX_DEPTH = 5  # a message inside a message inside …, counted from the uploaded one
MAX_ATTACHMENTS = 100
_HEADERS = ("Subject", "From", "To", "Cc", "Date")


def too_deep(depth: int) -> ParseError:
    return ParseError(
        f"The e-mail nests messages {depth} levels deep, past the limit of {MAX_DEPTH}; "
        "forward the innermost message on its own and upload that."
    )


def _html_to_text(html: str) -> str:
    try:
        return parse_html_text(html).text
    except ParseError:
        return ""


def _nesting(message: Message, depth: int = 0) -> int:
    deepest = depth
    for part in message.iter_parts() if isinstance(message, EmailMessage) else []:
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner_msg = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(inner_msg, Message):
                deepest = max(deepest, _nesting(inner_msg, depth + 1))
        elif part.is_multipart():
            deepest = max(deepest, _nesting(part, depth))
    return deepest


def _build(
    *, mime: str, headers: dict[str, str], body: str, attachments: list[Attachment]
) -> ParsedDocument:
    if len(attachments) > MAX_ATTACHMENTS:
        raise ParseError(
            f"The e-mail has {len(attachments)} attachments, over the limit of "
            f"{MAX_ATTACHMENTS}; upload the attachments as files of their own."
        )
    metadata = {k.lower(): " ".join(v.split()) for k, v in headers.items() if v and v.strip()}
    assembler = TextAssembler()
    header_text = "\n".join(
        f"{k}: {metadata[k.lower()]}" for k in _HEADERS if k.lower() in metadata
    )
    if attachments:
        header_text += "\nAttachments: " + ", ".join(a.name for a in attachments)
    subject = metadata.get("subject", "")
    assembler.add_section(title=subject, text=header_text)
    assembler.add_section(title=subject, text=body)
    if not assembler.sections:
        raise ParseError("The e-mail has no subject, sender or text to index.")
    return assembler.build(
        mime_type=mime,
        title=collapse_title(subject),
        metadata=metadata,
        attachments=tuple(attachments),
    )


def parse_eml(data: bytes) -> ParsedDocument:
    message = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(message, EmailMessage) or not any(message.get(h) for h in _HEADERS):
        raise ParseError("The file is not an e-mail: it has no Subject, From, To or Date header.")
    depth = _nesting(message)
    if depth > MAX_DEPTH:
        raise too_deep(depth)
    headers = {h: str(message.get(h, "")) for h in _HEADERS}
    part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if part is not None:
        content = part.get_content()
        body = _html_to_text(content) if part.get_content_type() == "text/html" else content
    attachments: list[Attachment] = []
    for number, item in enumerate(message.iter_attachments(), start=1):
        if item.get_content_type() == "message/rfc822":
            inner = item.get_payload()
            inner_msg = inner[0] if isinstance(inner, list) and inner else None
            if not isinstance(inner_msg, Message):
                continue
            name = item.get_filename() or f"{inner_msg.get('Subject') or f'message {number}'}.eml"
            attachments.append(Attachment(name=name, data=inner_msg.as_bytes()))
            continue
        payload = item.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            attachments.append(
                Attachment(name=item.get_filename() or f"attachment {number}", data=payload)
            )
    return _build(mime=EML_MIME, headers=headers, body=body, attachments=attachments)


def _msg_text(msg: Any) -> str:
    body = msg.body or ""
    if not body.strip() and msg.htmlBody:
        html = msg.htmlBody
        body = _html_to_text(html.decode("utf-8", "replace") if isinstance(html, bytes) else html)
    return body


def parse_msg(path: Path, depth: int = 0) -> ParsedDocument:
    import extract_msg  # heavy: extract-msg loads olefile, RTF and HTML helpers

    msg: Any
    try:
        msg = extract_msg.openMsg(str(path), strict=False, delayAttachments=False)
    except Exception as err:
        raise ParseError(
            f"The Outlook message could not be read: it looks damaged ({err})."
        ) from None
    try:
        headers = {
            "Subject": msg.subject or "",
            "From": msg.sender or "",
            "To": msg.to or "",
            "Cc": msg.cc or "",
            # The submit time property; a message saved without one keeps its headers'.
            "Date": str(msg.date or (msg.header.get("Date", "") if msg.header else "")),
        }
        body = _msg_text(msg)
        attachments: list[Attachment] = []
        nested: list[str] = []
        att: Any
        for number, att in enumerate(msg.attachments, start=1):
            data = att.data
            if isinstance(data, bytes):
                name = att.longFilename or att.shortFilename or f"attachment {number}"
                attachments.append(Attachment(name=name, data=data))
            elif data is not None and hasattr(data, "subject"):
                # An embedded message: its text joins this one (extract-msg cannot write
                # it back out as a file of its own).
                if depth + 1 > MAX_DEPTH:
                    raise too_deep(depth + 1)
                nested.append(f"Attached message: {data.subject or ''}\n{_msg_text(data)}")
        if nested:
            body = "\n\n".join([body, *nested])
        return _build(mime=MSG_MIME, headers=headers, body=body, attachments=attachments)
    finally:
        msg.close()
