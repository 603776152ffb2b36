"""Regenerate the generated sample manuals in ``samples/manuals/``.

Currently this builds one file:

* ``werkstatthandbuch_kompakt-3.pdf`` - a German workshop manual for the
  fictional car "Nordwagen Kompakt 3" (8 pages, one topic per page).

The content lives in this script (``PAGES`` below). The output is
deterministic: the PDF creation date is fixed, so rebuilding with the same
fpdf2 version gives byte-identical output.

Usage (from the repository root)::

    .venv/bin/python samples/build.py            # (re)write the PDF
    .venv/bin/python samples/build.py --check    # exit 1 if the PDF is stale

The other sample manuals (HTML, Markdown, plain text) are hand-written and
are not touched by this script.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

HERE = Path(__file__).resolve().parent
MANUALS = HERE / "manuals"
PDF_NAME = "werkstatthandbuch_kompakt-3.pdf"

# Fixed creation date -> reproducible bytes.
CREATION_DATE = datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC)

DOC_TITLE = "Nordwagen Kompakt 3 - Werkstatthandbuch"
RUNNING_HEADER = "Nordwagen Kompakt 3 - Werkstatthandbuch (fiktives Beispieldokument)"

# ---------------------------------------------------------------------------
# Content. Each page: a heading plus a list of blocks.
# Block kinds: ("p", text) paragraph, ("h", text) sub-heading,
# ("ol", [items]) numbered list, ("ul", [items]) bullet list,
# ("table", {"widths": [...], "rows": [[header...], [row...], ...]}).
# Only latin-1 characters may be used (core font helvetica).
# ---------------------------------------------------------------------------

PAGES: list[dict[str, Any]] = [
    {
        "heading": "1 Allgemeine Hinweise und Fahrzeugdaten",
        "blocks": [
            (
                "p",
                "Dieses Werkstatthandbuch gilt für den Nordwagen Kompakt 3 der Modelljahre "
                "2021 bis 2024 mit 1,5-l-Benzinmotor. Es richtet sich an Fachwerkstätten und an "
                "erfahrene Selbermacher. Fahrzeug, Hersteller und alle Angaben in diesem "
                "Dokument sind frei erfunden und dienen nur als Beispieldaten.",
            ),
            ("h", "Fahrzeugdaten"),
            (
                "table",
                {
                    "widths": [55, 115],
                    "rows": [
                        ["Merkmal", "Angabe"],
                        ["Motor", "1,5-l-Vierzylinder-Benziner TSE, Motorkennbuchstaben NWB"],
                        ["Leistung", "110 kW (150 PS) bei 5.000 1/min"],
                        ["Getriebe", "6-Gang-Schaltgetriebe oder 7-Gang-Doppelkupplungsgetriebe"],
                        ["Antrieb", "Frontantrieb"],
                        ["Leergewicht", "1.295 kg"],
                        ["Zulässiges Gesamtgewicht", "1.830 kg"],
                    ],
                },
            ),
            ("h", "Fahrzeug-Identifizierungsnummer (FIN) und Typschild"),
            (
                "p",
                "Die FIN ist an zwei Stellen angebracht: von außen lesbar unten links hinter der "
                "Windschutzscheibe und eingeschlagen im Motorraum rechts am Wasserkasten. Das "
                "Typschild mit den zulässigen Achslasten klebt an der B-Säule auf der Fahrerseite.",
            ),
            ("h", "Sicherheitshinweise"),
            (
                "ul",
                [
                    "Arbeiten unter dem Fahrzeug nur, wenn es auf einer Hebebühne steht oder "
                    "zusätzlich "
                    "mit Unterstellböcken gesichert ist. Ein Wagenheber allein genügt nicht.",
                    "Das Kühlsystem nur bei kaltem Motor öffnen. Heißes Kühlmittel steht unter "
                    "Druck "
                    "(Verbrühungsgefahr).",
                    "Bremsflüssigkeit ist giftig und greift Lack an. Spritzer sofort mit viel "
                    "Wasser "
                    "abwaschen.",
                    "Altöl, alte Ölfilter und Bremsflüssigkeit getrennt sammeln und über eine "
                    "Annahmestelle entsorgen.",
                    "Vor Arbeiten an der Elektrik die Batterie abklemmen (siehe Seite 6).",
                    "Schutzbrille und Handschuhe tragen.",
                ],
            ),
        ],
    },
    {
        "heading": "2 Technische Daten: Anzugsdrehmomente und Füllmengen",
        "blocks": [
            (
                "p",
                "Alle Anzugsdrehmomente gelten für saubere, leicht geölte Gewinde, sofern nicht "
                "anders angegeben. Schrauben immer mit einem geprüften Drehmomentschlüssel "
                "anziehen.",
            ),
            ("h", "Anzugsdrehmomente"),
            (
                "table",
                {
                    "widths": [70, 40, 60],
                    "rows": [
                        ["Verbindung", "Anzugsdrehmoment", "Hinweis"],
                        [
                            "Radschrauben (Stahl- und Leichtmetallfelgen)",
                            "120 Nm",
                            "über Kreuz anziehen",
                        ],
                        ["Ölablassschraube", "30 Nm", "Dichtring immer erneuern"],
                        ["Ölfiltergehäusedeckel", "18 Nm", ""],
                        ["Zündkerzen", "25 Nm", "nur bei kaltem Motor"],
                        ["Bremssattelträger vorne an Achsschenkel", "150 Nm", "Schrauben erneuern"],
                        ["Führungsbolzen Bremssattel vorne", "28 Nm", ""],
                        ["Antriebswellenmutter vorne", "200 Nm + 45°", "Mutter erneuern"],
                        ["Batteriepolklemmen", "6 Nm", ""],
                        ["Spannpratze Batterie", "15 Nm", ""],
                        ["Spannrolle Keilrippenriemen", "23 Nm", ""],
                    ],
                },
            ),
            ("h", "Füllmengen und Spezifikationen"),
            (
                "table",
                {
                    "widths": [55, 25, 90],
                    "rows": [
                        ["Betriebsstoff", "Füllmenge", "Spezifikation"],
                        ["Motoröl (mit Filterwechsel)", "4,2 l", "SAE 5W-30, Freigabe NW 504.00"],
                        [
                            "Kühlmittel (Gesamtfüllung)",
                            "6,5 l",
                            "Kühlerschutzmittel NW-KS 40, Mischung 50:50, frostsicher bis -36 °C",
                        ],
                        ["Bremsflüssigkeit", "ca. 0,9 l", "DOT 4"],
                        ["Schaltgetriebe", "2,0 l", "Getriebeöl SAE 75W-80"],
                        [
                            "Scheibenwaschanlage",
                            "3,5 l",
                            "Wasser mit Scheibenreiniger, im Winter mit Frostschutz",
                        ],
                        ["Kraftstofftank", "50 l", "Super E10, mindestens 95 ROZ"],
                        ["Klimaanlage", "450 g", "Kältemittel R1234yf"],
                    ],
                },
            ),
        ],
    },
    {
        "heading": "3 Räder und Reifen: Reifendruck und Radwechsel",
        "blocks": [
            ("h", "Reifendruck"),
            (
                "p",
                "Den Reifendruck nur bei kalten Reifen prüfen. Die Werte sind Überdruck in bar. "
                "Ein Aufkleber mit denselben Werten befindet sich an der Innenseite der "
                "Tankklappe.",
            ),
            (
                "table",
                {
                    "widths": [42, 32, 32, 32, 32],
                    "rows": [
                        [
                            "Reifengröße",
                            "vorne, teilbeladen",
                            "hinten, teilbeladen",
                            "vorne, voll beladen",
                            "hinten, voll beladen",
                        ],
                        ["195/65 R15 91H", "2,3 bar", "2,1 bar", "2,6 bar", "2,9 bar"],
                        ["205/55 R16 91V", "2,4 bar", "2,2 bar", "2,7 bar", "3,0 bar"],
                        ["225/45 R17 94W", "2,5 bar", "2,3 bar", "2,8 bar", "3,1 bar"],
                        ["Notrad T125/70 R16", "4,1 bar", "4,1 bar", "4,1 bar", "4,1 bar"],
                    ],
                },
            ),
            (
                "p",
                "Mit montiertem Notrad höchstens 80 km/h fahren und das Notrad so bald wie möglich "
                "wieder gegen ein normales Rad tauschen.",
            ),
            ("h", "Radwechsel"),
            (
                "ol",
                [
                    "Fahrzeug auf ebenem, festem Untergrund abstellen, Parkbremse anziehen und den "
                    "1. Gang bzw. die Wählhebelstellung P einlegen. Warnblinkanlage einschalten "
                    "und "
                    "Warndreieck aufstellen.",
                    "Bordwerkzeug, Wagenheber und Ersatzrad aus der Reserveradmulde unter dem "
                    "Kofferraumboden nehmen.",
                    "Radzierblende bzw. Abdeckkappen der Radschrauben abziehen. Die "
                    "diebstahlhemmende "
                    "Radschraube nur mit dem Adapter aus dem Bordwerkzeug lösen.",
                    "Alle Radschrauben mit dem Radschlüssel etwa eine Umdrehung lösen, solange "
                    "das Rad "
                    "noch auf dem Boden steht.",
                    "Wagenheber an der Aufnahmestelle am Schweller ansetzen, die durch eine "
                    "Prägung "
                    "markiert ist (vorne ca. 20 cm hinter dem Radlauf, hinten ca. 20 cm vor dem "
                    "Radlauf). Fahrzeug anheben, bis das Rad etwa 3 cm frei ist.",
                    "Radschrauben herausdrehen und das Rad abnehmen.",
                    "Ersatzrad ansetzen und alle Radschrauben von Hand über Kreuz eindrehen.",
                    "Fahrzeug ablassen und den Wagenheber entfernen.",
                    "Radschrauben über Kreuz mit dem Drehmomentschlüssel auf das vorgeschriebene "
                    "Anzugsdrehmoment anziehen (siehe Seite 2).",
                    "Reifendruck des montierten Rades prüfen. Nach 50 km das Anzugsdrehmoment der "
                    "Radschrauben nachprüfen.",
                ],
            ),
        ],
    },
    {
        "heading": "4 Motor: Ölwechsel und Ölfilter",
        "blocks": [
            (
                "p",
                "Der Ölwechsel wird immer zusammen mit dem Wechsel des Ölfiltereinsatzes "
                "durchgeführt. Ölmenge und Ölspezifikation siehe Seite 2, Intervalle siehe Seite "
                "7.",
            ),
            ("h", "Benötigte Teile und Werkzeuge"),
            (
                "ul",
                [
                    "Ölfiltereinsatz mit O-Ring, Teilenummer NW 1K3 115 562",
                    "Dichtring für die Ölablassschraube, Teilenummer NW 900 314 02",
                    "Ringschlüssel SW 17 für die Ölablassschraube",
                    "Steckschlüssel 32 mm für den Ölfiltergehäusedeckel",
                    "Ölauffangwanne mit mindestens 6 l Fassungsvermögen",
                    "Drehmomentschlüssel",
                ],
            ),
            ("h", "Arbeitsschritte"),
            (
                "ol",
                [
                    "Motor warmfahren, bis die Öltemperatur etwa 60 °C erreicht hat. Das Fahrzeug "
                    "waagerecht abstellen und den Motor ausschalten.",
                    "Öleinfülldeckel auf dem Zylinderkopfdeckel abschrauben, damit das Öl besser "
                    "abläuft.",
                    "Motorunterschutz abbauen (6 Schrauben, Torx T25).",
                    "Ölauffangwanne unterstellen, Ölablassschraube herausdrehen und das Altöl etwa "
                    "10 Minuten lang vollständig ablaufen lassen.",
                    "Ölablassschraube mit neuem Dichtring eindrehen und mit dem "
                    "Drehmomentschlüssel "
                    "anziehen.",
                    "Ölfiltergehäusedeckel oben am Motor mit dem Steckschlüssel öffnen. "
                    "Filtereinsatz und "
                    "O-Ring ersetzen, den neuen O-Ring mit frischem Motoröl benetzen und den "
                    "Deckel "
                    "festziehen.",
                    "Zunächst 3,8 l frisches Motoröl einfüllen.",
                    "Motor 1 Minute im Leerlauf laufen lassen, ausschalten und 3 Minuten warten. "
                    "Ölstand am Ölmessstab prüfen und bis zur MAX-Markierung auffüllen. Zwischen "
                    "MIN- "
                    "und MAX-Markierung liegen 1,0 l.",
                    "Ölablassschraube und Ölfiltergehäuse auf Dichtheit prüfen, dann den "
                    "Motorunterschutz wieder anbauen.",
                    "Serviceintervallanzeige zurücksetzen: Bei ausgeschalteter Zündung die Taste "
                    "0.0 am "
                    "Kombiinstrument gedrückt halten, Zündung einschalten und die Taste weitere "
                    '10 Sekunden halten, bis "Service ---" erscheint.',
                ],
            ),
        ],
    },
    {
        "heading": "5 Bremsanlage: Bremsbeläge vorne prüfen",
        "blocks": [
            ("h", "Aufbau"),
            (
                "p",
                "Vorne arbeiten innenbelüftete Scheibenbremsen mit Faustsattel und 288 mm "
                "Scheibendurchmesser, hinten Trommelbremsen. Der innere Bremsbelag vorne links "
                "besitzt einen elektrischen Verschleißkontakt, der die Kontrollleuchte "
                "Bremsbelagverschleiß im Kombiinstrument einschaltet.",
            ),
            ("h", "Verschleißmaße"),
            (
                "table",
                {
                    "widths": [80, 40, 50],
                    "rows": [
                        ["Bauteil", "Neuteil", "Verschleißgrenze"],
                        ["Bremsbelag vorne (Belagstärke ohne Rückenplatte)", "12 mm", "2 mm"],
                        ["Bremsscheibe vorne (Dicke)", "25 mm", "22 mm"],
                        ["Bremstrommel hinten (Innendurchmesser)", "230 mm", "231 mm"],
                        ["Bremsbelag hinten (Trommelbremse)", "5 mm", "2,5 mm"],
                    ],
                },
            ),
            ("h", "Prüfung Schritt für Schritt"),
            (
                "ol",
                [
                    "Fahrzeug anheben und die Vorderräder abnehmen (siehe Seite 3).",
                    "Den äußeren Bremsbelag durch die Öffnung im Bremssattel prüfen, den inneren "
                    "Bremsbelag mit Taschenlampe und Spiegel.",
                    "Belagstärke beider Beläge mit einem Messschieber oder einer Belaglehre "
                    "messen. Bei "
                    "3 mm oder weniger den Austausch beim nächsten Werkstattbesuch einplanen; bei "
                    "Erreichen der Verschleißgrenze sofort erneuern.",
                    "Dicke der Bremsscheibe an mehreren Stellen mit einer Bügelmessschraube "
                    "messen. "
                    "Riefen tiefer als 0,5 mm, Risse oder blaue Anlauffarben sind ein Grund zum "
                    "Austausch.",
                    "Bremsschläuche auf Risse, Scheuerstellen und Feuchtigkeit prüfen.",
                    "Flüssigkeitsstand im Bremsflüssigkeitsbehälter prüfen. Der Stand muss "
                    "zwischen MIN "
                    "und MAX liegen. Sinkt der Stand bei neuen Belägen, deutet das auf eine "
                    "Undichtigkeit hin.",
                    "Räder montieren und die Radschrauben mit dem vorgeschriebenen "
                    "Anzugsdrehmoment "
                    "anziehen.",
                ],
            ),
            ("h", "Hinweise zum Belagwechsel"),
            (
                "ul",
                [
                    "Bremsbeläge immer achsweise (links und rechts gemeinsam) erneuern.",
                    "Nach dem Einbau neuer Beläge das Bremspedal im Stand mehrmals kräftig "
                    "treten, bis "
                    "ein fester Widerstand spürbar ist.",
                    "Neue Beläge auf den ersten 200 km einbremsen und Vollbremsungen vermeiden, "
                    "soweit "
                    "die Verkehrslage es zulässt.",
                ],
            ),
        ],
    },
    {
        "heading": "6 Elektrik: Batterie abklemmen und Sicherungsbelegung",
        "blocks": [
            (
                "p",
                "Die Starterbatterie (12 V, 60 Ah, Kälteprüfstrom 540 A, AGM-Ausführung für die "
                "Start-Stopp-Automatik) sitzt im Motorraum links unter einer Kunststoffabdeckung.",
            ),
            ("h", "Batterie abklemmen"),
            (
                "ol",
                [
                    "Zündung ausschalten, Schlüssel abziehen und alle Verbraucher wie Licht und "
                    "Radio "
                    "ausschalten.",
                    "Mindestens 5 Minuten warten, damit alle Steuergeräte in den Ruhezustand "
                    "wechseln.",
                    "Abdeckung der Batterie abnehmen.",
                    "Zuerst die Klemme am Minuspol (-) lösen (Mutter SW 10) und zur Seite legen, "
                    "dann "
                    "die Klemme am Pluspol (+) lösen.",
                    "Beim Anklemmen in umgekehrter Reihenfolge vorgehen: zuerst Pluspol, dann "
                    "Minuspol. "
                    "Polklemmen mit dem Drehmomentschlüssel anziehen.",
                    "Nach dem Anklemmen die elektrischen Fensterheber neu anlernen: Fenster ganz "
                    "schließen, Schalter hochziehen und 2 Sekunden halten. Uhrzeit einstellen und "
                    "das "
                    "Lenkrad einmal von Anschlag zu Anschlag drehen, damit sich der "
                    "Lenkwinkelsensor "
                    "initialisiert.",
                ],
            ),
            ("h", "Sicherungsbelegung"),
            (
                "p",
                "Der Sicherungskasten im Innenraum sitzt links in der Armaturentafel hinter einer "
                "seitlichen Abdeckung, die nur bei geöffneter Fahrertür zugänglich ist. Die "
                "Hauptsicherungen befinden sich im Motorraum direkt auf der Batterie. Defekte "
                "Sicherungen nur durch Sicherungen gleicher Stärke ersetzen; eine Sicherungszange "
                "steckt im Deckel des Sicherungskastens.",
            ),
            (
                "table",
                {
                    "widths": [20, 110, 40],
                    "rows": [
                        ["Nr.", "Verbraucher", "Stärke"],
                        ["F1", "Motorsteuergerät", "10 A"],
                        ["F3", "Kraftstoffpumpe", "15 A"],
                        ["F7", "Bremslichtschalter", "5 A"],
                        ["F12", "Radio und Infotainment", "15 A"],
                        ["F15", "Hupe", "10 A"],
                        ["F18", "12-V-Steckdose Mittelkonsole", "20 A"],
                        ["F21", "Scheibenwischermotor vorne", "30 A"],
                        ["F23", "Heckscheibenheizung", "30 A"],
                        ["F27", "Gebläse Heizung und Klimaanlage", "40 A"],
                        ["F30", "Sitzheizung vorne", "25 A"],
                        ["F33", "Elektrische Außenspiegel", "5 A"],
                    ],
                },
            ),
        ],
    },
    {
        "heading": "7 Wartungsintervalle",
        "blocks": [
            (
                "p",
                "Es gilt jeweils das Ereignis, das zuerst eintritt (Kilometerstand oder Zeit). Die "
                "Intervalle gelten für normale Betriebsbedingungen.",
            ),
            (
                "table",
                {
                    "widths": [90, 80],
                    "rows": [
                        ["Arbeit", "Intervall"],
                        ["Motoröl und Ölfilter wechseln", "alle 15.000 km oder 1 Jahr"],
                        ["Innenraumfilter (Pollenfilter) erneuern", "alle 30.000 km oder 2 Jahre"],
                        [
                            "Bremsflüssigkeit wechseln",
                            "erstmals nach 3 Jahren, danach alle 2 Jahre, unabhängig von der "
                            "Laufleistung",
                        ],
                        ["Zündkerzen erneuern", "alle 45.000 km oder 3 Jahre"],
                        ["Luftfilter erneuern", "alle 60.000 km oder 4 Jahre"],
                        ["Keilrippenriemen prüfen", "alle 60.000 km"],
                        [
                            "Zahnriemen mit Spannrolle und Wasserpumpe erneuern",
                            "alle 180.000 km oder 8 Jahre",
                        ],
                        ["Frostschutz des Kühlmittels prüfen", "jährlich vor dem Winter"],
                        [
                            "Getriebeöl Schaltgetriebe",
                            "Lebensdauerfüllung, kein Wechsel vorgesehen",
                        ],
                        ["Batterie prüfen (Ladezustand, Polklemmen)", "bei jeder Inspektion"],
                        ["Scheibenwischerblätter erneuern", "jährlich"],
                    ],
                },
            ),
            ("h", "Erschwerte Betriebsbedingungen"),
            (
                "p",
                "Bei überwiegendem Kurzstreckenbetrieb (Fahrten unter 10 km), häufigem Betrieb auf "
                "staubigen Straßen oder Einsatz als Taxi verkürzen sich die Intervalle: Ölwechsel "
                "alle 7.500 km oder 6 Monate, Luftfilter alle 30.000 km.",
            ),
            ("h", "Nach der Wartung"),
            (
                "p",
                "Jede durchgeführte Wartung im Serviceheft eintragen und die "
                "Serviceintervallanzeige "
                "zurücksetzen (siehe Seite 4).",
            ),
        ],
    },
    {
        "heading": "8 Fehlersuche",
        "blocks": [
            (
                "p",
                "Die Tabelle nennt häufige Störungen, ihre wahrscheinlichen Ursachen und die "
                "Abhilfe. Leuchtet eine rote Kontrollleuchte, das Fahrzeug so bald wie möglich "
                "sicher anhalten.",
            ),
            (
                "table",
                {
                    "widths": [50, 55, 65],
                    "font_size": 9,
                    "rows": [
                        ["Symptom", "Mögliche Ursache", "Abhilfe"],
                        [
                            "Motor springt nicht an, Anlasser dreht nicht oder nur langsam",
                            "Batterie entladen, Polklemmen lose oder oxidiert",
                            "Batterie laden oder Starthilfe geben; Polklemmen reinigen und "
                            "festziehen",
                        ],
                        [
                            "Motor springt nicht an, Anlasser dreht normal",
                            "Kraftstoffmangel, Kraftstoffpumpe ohne Spannung, Wegfahrsperre aktiv",
                            "Tankinhalt prüfen; Sicherung der Kraftstoffpumpe prüfen; "
                            "Zweitschlüssel verwenden",
                        ],
                        [
                            "Kontrollleuchte Öldruck leuchtet während der Fahrt",
                            "Ölstand zu niedrig, Ölpumpe oder Öldruckschalter defekt",
                            "Sofort anhalten und Motor abstellen, Ölstand prüfen. Leuchtet die "
                            "Leuchte nach "
                            "dem Auffüllen weiter, nicht weiterfahren und abschleppen lassen",
                        ],
                        [
                            "Kontrollleuchte Öldruck flackert im Leerlauf",
                            "Ölstand an der MIN-Markierung, Motoröl überaltert",
                            "Motoröl nachfüllen, Ölwechsel durchführen",
                        ],
                        [
                            "Bremsen quietschen",
                            "Bremsbeläge verglast, Montagepaste an der Rückenplatte fehlt, "
                            "Verschleißgrenze "
                            "erreicht",
                            "Beläge prüfen; Bremsen-Montagepaste dünn auf Rückenplatte und "
                            "Führungen "
                            "auftragen, nie auf die Reibfläche",
                        ],
                        [
                            "Lenkrad vibriert beim Bremsen",
                            "Bremsscheiben verzogen (Seitenschlag über 0,05 mm)",
                            "Bremsscheiben und Bremsbeläge achsweise erneuern",
                        ],
                        [
                            "Bremspedal weich, Pedalweg lang",
                            "Luft im Bremssystem, Bremsflüssigkeit überaltert (Wasseraufnahme)",
                            "Bremsanlage entlüften, Bremsflüssigkeit wechseln",
                        ],
                        [
                            "Kühlmitteltemperatur zu hoch, Warnleuchte rot",
                            "Kühlmittelstand zu niedrig, Kühlerlüfter defekt, Thermostat klemmt",
                            "Motor mindestens 30 Minuten abkühlen lassen, dann den "
                            "Kühlmittelstand im "
                            "Kühlmittelausgleichsbehälter prüfen und auffüllen",
                        ],
                        [
                            "Batterieladekontrollleuchte leuchtet während der Fahrt",
                            "Keilrippenriemen gerissen, Generator defekt",
                            "Keilrippenriemen prüfen; Generator prüfen lassen",
                        ],
                        [
                            "Kontrollleuchte Bremsbelagverschleiß leuchtet",
                            "Verschleißkontakt am inneren Belag vorne links erreicht",
                            "Bremsbeläge vorne prüfen und erneuern (siehe Seite 5)",
                        ],
                        [
                            "Automatik der Fensterheber ohne Funktion",
                            "Batterie war abgeklemmt",
                            "Fensterheber neu anlernen (siehe Seite 6)",
                        ],
                    ],
                },
            ),
        ],
    },
]


class ManualPDF(FPDF):
    def header(self) -> None:
        self.set_font("helvetica", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, RUNNING_HEADER, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(4)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("helvetica", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 5, f"Seite {self.page_no()} von {len(PAGES)}", align="C")
        self.set_text_color(0, 0, 0)


BODY_SIZE = 10
LINE_H = 5


def _heading(pdf: FPDF, text: str) -> None:
    pdf.set_font("helvetica", style="B", size=16)
    pdf.multi_cell(0, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)


def _subheading(pdf: FPDF, text: str) -> None:
    pdf.ln(2)
    pdf.set_font("helvetica", style="B", size=12)
    pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font("helvetica", size=BODY_SIZE)
    pdf.multi_cell(0, LINE_H, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)


def _list(pdf: FPDF, items: list[str], *, numbered: bool) -> None:
    pdf.set_font("helvetica", size=BODY_SIZE)
    indent = 8
    for i, item in enumerate(items, start=1):
        marker = f"{i}." if numbered else "-"
        pdf.set_x(pdf.l_margin)
        pdf.cell(indent, LINE_H, marker)
        pdf.multi_cell(
            pdf.epw - indent, LINE_H, item, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        pdf.ln(0.8)
    pdf.ln(1)


def _table(pdf: FPDF, spec: dict[str, Any]) -> None:
    size = spec.get("font_size", BODY_SIZE)
    pdf.set_font("helvetica", size=size)
    with pdf.table(
        col_widths=spec["widths"],
        width=sum(spec["widths"]),
        align="LEFT",
        text_align="LEFT",
        line_height=size * 0.5,
        padding=1.2,
        headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
        first_row_as_headings=True,
    ) as table:
        for row_data in spec["rows"]:
            row = table.row()
            for value in row_data:
                row.cell(value)
    pdf.ln(3)


def build_pdf() -> bytes:
    pdf = ManualPDF(orientation="P", unit="mm", format="A4")
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_title(DOC_TITLE)
    pdf.set_author("Handbook sample data (fictional)")
    pdf.set_subject("Fiktives Werkstatthandbuch für Tests und Demos")
    pdf.set_lang("de-DE")
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(True, margin=18)

    for number, page in enumerate(PAGES, start=1):
        pdf.add_page()
        pdf.start_section(page["heading"])  # PDF outline (bookmarks): headings for citations
        _heading(pdf, page["heading"])
        for kind, payload in page["blocks"]:
            if kind == "p":
                _paragraph(pdf, payload)
            elif kind == "h":
                _subheading(pdf, payload)
            elif kind == "ol":
                _list(pdf, payload, numbered=True)
            elif kind == "ul":
                _list(pdf, payload, numbered=False)
            elif kind == "table":
                _table(pdf, payload)
            else:  # pragma: no cover - content error
                raise ValueError(f"unknown block kind {kind!r}")
        if pdf.page != number:
            raise SystemExit(
                f"content of page {number} ({page['heading']!r}) overflowed onto a new page"
            )
    return bytes(pdf.output())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the committed PDF differs from a fresh build",
    )
    args = parser.parse_args(argv)

    data = build_pdf()
    target = MANUALS / PDF_NAME
    if args.check:
        if not target.exists() or target.read_bytes() != data:
            print(f"{target} is stale; run: python samples/build.py", file=sys.stderr)
            return 1
        print(f"{target.name}: up to date")
        return 0
    MANUALS.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes, {len(PAGES)} pages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
