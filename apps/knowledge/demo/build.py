"""Regenerate the two binary demo documents next to this file.

    .venv/bin/python apps/knowledge/demo/build.py

reportlab is a dev dependency only, so the generated pathfinder-faq.pdf and
onboarding-guide.docx are committed; run this after editing the text below.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
AUTHOR = "Northwind Robotics"

# --- Pathfinder product FAQ (public) -------------------------------------------------------

FAQ_TITLE = "Pathfinder Product FAQ"
# (heading, paragraphs); a heading starting with "+" begins a new page.
FAQ: list[tuple[str, list[str]]] = [
    (
        "About Pathfinder",
        [
            "Pathfinder is the autonomous mobile robot (AMR) made by Northwind Robotics in "
            "Sheffield, UK. It moves totes, cases and pallets around warehouses without "
            "tape, magnets or reflectors on the floor: it navigates with two safety lidars "
            "and a 3D camera against a map it builds itself in about an hour per "
            "10,000 square metres.",
            "Two models are available. The Pathfinder P150 carries up to 150 kg on its top "
            "deck and suits tote and parcel work. The Pathfinder P600 lifts pallets and "
            "carts of up to 600 kg. A P1200 heavy-load model is in development and is not "
            "yet for sale.",
            "Fleets of up to 200 robots are coordinated by Northwind Atlas, our fleet "
            "management software, which connects to most warehouse management systems "
            "through a REST API or standard VDA 5050 messages.",
        ],
    ),
    (
        "Battery and charging",
        [
            "How long does the battery last? Both models use a 48 V lithium iron phosphate "
            "(LiFePO4) pack of 2.4 kWh. At a typical duty cycle the P150 runs for 9 hours "
            "and the P600 for 7 hours on one charge.",
            "How fast does it charge? On a Northwind DockStation a pack charges from 10% "
            "to 90% in 55 minutes. Atlas sends robots to charge automatically between "
            "jobs (opportunity charging), so most sites run around the clock with one "
            "DockStation for every 6 robots.",
            "How long does the battery live? The pack keeps at least 80% of its capacity "
            "after 3,000 full cycles, which is about five years of two-shift operation. "
            "Packs are replaced in 15 minutes by a trained technician; they are not "
            "hot-swappable.",
            "Can the robot work in cold stores? Standard robots operate from 0 to 40 degrees "
            "Celsius. A cold-store variant rated down to -25 degrees Celsius will be "
            "available in 2026.",
        ],
    ),
    (
        "+Payload and performance",
        [
            "What can it carry? The P150 carries 150 kg on a 600 x 400 mm deck, or tows "
            "carts of up to 300 kg with the tow-hitch option. The P600 lifts 600 kg pallets "
            "(EUR 1200 x 800 mm and UK 1200 x 1000 mm) 60 mm off the floor, and tows up "
            "to 1,000 kg.",
            "How fast does it drive? Top speed is 2.0 m/s (7.2 km/h) in open aisles. "
            "Pathfinder slows to 0.3 m/s when people are within its warning field and "
            "stops within 0.5 m at full load.",
            "What floors does it need? A level, sealed concrete floor with gradients up to "
            "3% and gaps or thresholds no higher than 10 mm.",
            "How is it protected? The chassis is rated IP54 against dust and splashing "
            "water. Each robot weighs 118 kg (P150) or 265 kg (P600).",
        ],
    ),
    (
        "+Safety and certifications",
        [
            "Which standards does Pathfinder meet? Pathfinder is certified to "
            "ISO 3691-4:2023 (safety requirements for driverless industrial trucks) by "
            "TUV Nord. It carries the CE mark under the EU Machinery Directive "
            "2006/42/EC and the UKCA mark, and is listed to UL 3100 for North America.",
            "How does it avoid people? Two safety-rated lidars give 360-degree protective "
            "fields rated to Performance Level d (PL d) under ISO 13849-1. The fields "
            "grow with speed and load, and the robot cannot exceed the speed its fields "
            "allow.",
            "How do I stop a robot? Every Pathfinder has four red emergency-stop buttons, "
            "one on each corner, and can be stopped from any Atlas screen. Site staff can "
            "also carry a wireless stop key that halts every robot within 50 m.",
            "Is training needed? Site staff complete a 45-minute safety induction before "
            "working near robots; Northwind delivers it at installation at no charge.",
        ],
    ),
    (
        "Warranty and support",
        [
            "Each robot comes with a 3-year warranty covering parts and labour, and the "
            "battery pack for 3,000 cycles or 5 years. Support is available 24 hours a "
            "day on +44 114 496 0220 or support@northwind-robotics.example, with a "
            "4-hour on-site response in the UK, Germany and the Netherlands under the "
            "Premium plan.",
        ],
    ),
]


def build_pdf(path: Path) -> None:
    # reportlab: a dev dependency only, and heavy; imported when the PDF is rebuilt
    from reportlab.lib.pagesizes import A4  # heavy, dev only (see above)
    from reportlab.lib.styles import getSampleStyleSheet  # heavy, dev only
    from reportlab.lib.units import mm  # heavy, dev only
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer  # heavy

    class FaqTemplate(SimpleDocTemplate):
        def afterFlowable(self, flowable: object) -> None:  # noqa: N802 - reportlab's hook
            # Outline entries let a reader (and our parser) name each page's section.
            if isinstance(flowable, Paragraph) and flowable.style.name == "Heading2":
                key = f"h{id(flowable)}"
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(flowable.getPlainText(), key, level=0)

    styles = getSampleStyleSheet()
    story: list[object] = [
        Paragraph(FAQ_TITLE, styles["Title"]),
        Paragraph(
            "Northwind Robotics Ltd, Attercliffe Road, Sheffield. Public document, "
            "revision C, September 2025.",
            styles["Italic"],
        ),
        Spacer(1, 6 * mm),
    ]
    for heading, paragraphs in FAQ:
        if heading.startswith("+"):
            story.append(PageBreak())
            heading = heading[1:]
        story.append(Paragraph(heading, styles["Heading2"]))
        for text in paragraphs:
            story.append(Paragraph(text, styles["BodyText"]))
            story.append(Spacer(1, 2 * mm))
    doc = FaqTemplate(
        str(path),
        pagesize=A4,
        title=FAQ_TITLE,
        author=AUTHOR,
        subject="Pathfinder autonomous mobile robot: battery, payload, safety",
        invariant=True,  # no timestamps or random ids: rebuilding gives the same bytes
    )
    doc.build(story)


# --- Onboarding guide (internal) -----------------------------------------------------------

ONBOARDING_TITLE = "Onboarding Guide for New Starters"
WEEK_ONE = [
    ("Day", "Where", "What"),
    ("Monday", "Leeds, reception, 09:00", "Badge, laptop, welcome with People team"),
    ("Tuesday", "Leeds or remote", "Accounts, MFA, security awareness course"),
    ("Wednesday", "Sheffield plant", "Warehouse safety induction, robot demo"),
    ("Thursday", "With your team", "Team rituals, first small task"),
    ("Friday", "Leeds, 16:00", "New starters' Q&A with the CEO, Amara Okafor"),
]
ONBOARDING: list[tuple[str, list[str]]] = [
    (
        "Welcome to Northwind Robotics",
        [
            "This guide covers your first 90 days. Your manager and your buddy will go "
            "through it with you on your first morning; keep it open during your first "
            "week.",
            "Your buddy is an experienced colleague from another team. They are your "
            "first contact for everyday questions, from where to find the meeting rooms "
            "to how we write design documents. Meet them at least once a week for your "
            "first month.",
        ],
    ),
    (
        "Your first day",
        [
            "Arrive at reception at Wellington Place, Leeds, at 09:00 and ask for the People "
            "team. Bring photo ID and your right-to-work documents if you have not sent "
            "them already. You will get your badge, your laptop and your account details.",
            "Set up Northwind Authenticator before you leave for the day: without it you "
            "cannot sign in from home or use the VPN. The IT desk on level 2 helps with "
            "anything that does not work.",
        ],
    ),
    (
        "Your first week",
        ["A typical first week looks like this; your manager may change the order."],
    ),
    (
        "Mandatory training",
        [
            "Security awareness: complete the online course within 14 days of joining.",
            "Warehouse safety induction: 45 minutes, in person, required before you visit "
            "the Sheffield plant or any customer site where Pathfinder robots operate. "
            "Wear the safety boots issued to you in all marked areas.",
            "Data protection: a 30-minute course within your first month.",
            "Your training record is in PeopleHub under Learning; overdue courses are "
            "reported to your manager.",
        ],
    ),
    (
        "30, 60 and 90 days",
        [
            "You and your manager agree three to five goals in your first two weeks and "
            "review them at 30, 60 and 90 days. The probation period is 6 months; it is "
            "confirmed in writing, and your manager will tell you early if anything is "
            "not on track.",
            "At 90 days the People team asks for your feedback on onboarding. It is "
            "anonymous, and we change this guide based on it.",
        ],
    ),
    (
        "Who to ask",
        [
            "IT problems: the IT Service Desk, extension 4357 or "
            "itdesk@northwind-robotics.example.",
            "Pay, leave and contracts: the People team, people@northwind-robotics.example.",
            "Expenses and travel bookings: finance-ops@northwind-robotics.example.",
            "Security incidents, including a lost badge or laptop: extension 4999, within "
            "one hour.",
        ],
    ),
]


def build_docx(path: Path) -> None:
    import docx  # heavy: python-docx loads lxml

    document = docx.Document()
    props = document.core_properties
    props.title = ONBOARDING_TITLE
    props.author = AUTHOR
    # Fixed dates keep the file stable between rebuilds.
    props.created = props.modified = dt.datetime(2025, 9, 1, 9, 0, 0)
    props.last_modified_by = AUTHOR
    props.revision = 3

    document.add_paragraph(ONBOARDING_TITLE, style="Title")
    document.add_paragraph("People team, Northwind Robotics. Version 3, September 2025.")
    for heading, paragraphs in ONBOARDING:
        document.add_heading(heading, level=1)
        for text in paragraphs:
            document.add_paragraph(text)
        if heading == "Your first week":
            table = document.add_table(rows=0, cols=len(WEEK_ONE[0]))
            table.style = "Table Grid"
            for row in WEEK_ONE:
                for cell, value in zip(table.add_row().cells, row, strict=True):
                    cell.text = value
    document.save(str(path))
    _fix_zip_timestamps(path)


def _fix_zip_timestamps(path: Path) -> None:
    """python-docx stamps each zip member with the current time; a fixed stamp makes a
    rebuild byte-identical, so git shows a change only when the text changed."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2025, 9, 1, 9, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)  # fmt: skip


def main() -> None:
    build_pdf(HERE / "pathfinder-faq.pdf")
    build_docx(HERE / "onboarding-guide.docx")


if __name__ == "__main__":
    main()
