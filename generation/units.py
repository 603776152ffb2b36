"""Units of the values technical manuals give, in one place: which units answer which
quantity a question asks for (Drehmoment: Nm), and which units a number is held to."""

from __future__ import annotations

# (what a question asks for, the units that answer it), German and English, as regexes.
QUANTITIES: tuple[tuple[str, str], ...] = (
    (r"drehmoment|anzugsmoment|torque", r"N\s?·?m|Nm|lbf?[ .·-]?ft|ft[ .·-]?lbs?"),
    (r"druck|pressure", r"bar|psi|kPa|MPa"),
    (r"temperatur|temperature", r"°\s?[CF]"),
    (
        r"menge|volumen|capacity|volume|fassungsvermögen|inhalt",
        r"l|ml|[Ll]iter|[Ll]itre|cm³|gal",
    ),
    (r"spannung|voltage", r"V|kV|mV"),
    (r"strom|current|sicherung|fuse", r"A|mA"),
    (r"leistung|power", r"kW|W|PS|hp"),
    (r"gewicht|masse|weight|mass", r"kg|g|t"),
    (
        r"länge|breite|höhe|abstand|durchmesser|length|width|height|distance|diameter",
        r"mm|cm|m|in",
    ),
    (r"geschwindigkeit|drehzahl|speed|rpm", r"km/h|mm/s|m/s|rpm|U/min|1/min"),
    (
        r"intervall|interval|wie lange|how long|wie oft|how often|wann|when",
        r"s|min|h|Jahre?n?|years?|months?|Monate?n?|km|[Bb]etriebsstunden|hours?",
    ),
    (r"frequenz|frequency", r"Hz|kHz|MHz"),
)

# Units of measurement a number is written with (case matters: 5 m is not 5 M). The grounding
# check holds a number to its unit; words (years, Jahre) are left out, as they change with
# the language of the answer.
MEASURE_UNITS = (
    r"°\s?[CF]|%|N\s?·?m|Nm|bar|mbar|psi|[kM]?Pa|[mkM]?[lL]|[mck]?m|km/h|m/s|mm/s|rpm|U/min"
    r"|[mk]?g|t|[mk]?V|m?A|k?W|PS|hp|[kMG]?Hz|m?s|min|h|[KMGT]i?B|dB|dpi|px|pt"
)
