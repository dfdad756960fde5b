"""Units conversion: ``convert_angle``, ``convert_energy``, ``convert_force``, ``convert_length``,
``convert_mass``, ``convert_speed``, ``convert_temperature``, ``convert_volume``.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import lit_str
from kqlmagic_plus.language.compiler.sqlexpr import n, paren
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()

# Each unit's size in its family's base unit, from the units' definitions. Kusto converts through the
# base unit (value * from / to), as is done here. Units whose constant differs between published
# sources (astronomical masses and radii, the electronvolt's CODATA revisions) and the non-linear
# "Tilt" are refused by name rather than guessed.
_INCH = 0.0254
_FOOT = 0.3048
_US_GALLON = 0.003785411784
_IMP_GALLON = 0.00454609
_CUBIC_FOOT = _FOOT**3
_THERM_EC = 1.05505585262e8
_THERM_IMP = 1.05505585257348e8
_THERM_US = 1.054804e8
_BTU = 1055.05585262
_POUND = 0.45359237
_POUND_FORCE = 4.4482216152605
_DEG = 1.0
_RAD = 180.0 / 3.141592653589793

FACTORS: dict[str, dict[str, float]] = {
    "angle": {
        "Arcminute": _DEG / 60,
        "Arcsecond": _DEG / 3600,
        "Centiradian": _RAD / 100,
        "Deciradian": _RAD / 10,
        "Degree": _DEG,
        "Gradian": 0.9,
        "Microdegree": 1e-6,
        "Microradian": _RAD * 1e-6,
        "Millidegree": 1e-3,
        "Milliradian": _RAD * 1e-3,
        "Nanodegree": 1e-9,
        "Nanoradian": _RAD * 1e-9,
        "NatoMil": 360 / 6400,
        "Radian": _RAD,
        "Revolution": 360.0,
    },
    "energy": {
        "BritishThermalUnit": _BTU,
        "Calorie": 4.184,
        "Erg": 1e-7,
        "GigabritishThermalUnit": _BTU * 1e9,
        "Gigajoule": 1e9,
        "GigawattDay": 86400 * 1e9,
        "GigawattHour": 3600 * 1e9,
        "Joule": 1.0,
        "KilobritishThermalUnit": _BTU * 1e3,
        "Kilocalorie": 4184.0,
        "Kilojoule": 1e3,
        "KilowattDay": 86400 * 1e3,
        "KilowattHour": 3600 * 1e3,
        "MegabritishThermalUnit": _BTU * 1e6,
        "Megacalorie": 4.184e6,
        "Megajoule": 1e6,
        "MegawattDay": 86400 * 1e6,
        "MegawattHour": 3600 * 1e6,
        "Millijoule": 1e-3,
        "TerawattDay": 86400 * 1e12,
        "TerawattHour": 3600 * 1e12,
        "WattDay": 86400.0,
        "WattHour": 3600.0,
    },
    "force": {
        "Decanewton": 10.0,
        "Dyn": 1e-5,
        "KilogramForce": 9.80665,
        "Kilonewton": 1e3,
        "KiloPond": 9.80665,
        "KilopoundForce": _POUND_FORCE * 1e3,
        "Meganewton": 1e6,
        "Micronewton": 1e-6,
        "Millinewton": 1e-3,
        "Newton": 1.0,
        "OunceForce": _POUND_FORCE / 16,
        "PoundForce": _POUND_FORCE,
        "ShortTonForce": _POUND_FORCE * 2000,
        "TonneForce": 9806.65,
    },
    "length": {
        "Angstrom": 1e-10,
        "Centimeter": 1e-2,
        "Decameter": 10.0,
        "Decimeter": 0.1,
        "Foot": _FOOT,
        "Hectometer": 100.0,
        "Inch": _INCH,
        "Kilometer": 1e3,
        "Meter": 1.0,
        "Microinch": _INCH * 1e-6,
        "Micrometer": 1e-6,
        "Mil": _INCH * 1e-3,
        "Millimeter": 1e-3,
        "Nanometer": 1e-9,
        "NauticalMile": 1852.0,
        "Yard": 0.9144,
    },
    "mass": {
        "Centigram": 1e-5,
        "Decagram": 1e-2,
        "Decigram": 1e-4,
        "Grain": 6.479891e-5,
        "Gram": 1e-3,
        "Hectogram": 0.1,
        "Kilogram": 1.0,
        "Kilopound": _POUND * 1e3,
        "Kilotonne": 1e6,
        "LongHundredweight": 50.80234544,
        "LongTon": 1016.0469088,
        "Megapound": _POUND * 1e6,
        "Megatonne": 1e9,
        "Microgram": 1e-9,
        "Milligram": 1e-6,
        "Nanogram": 1e-12,
        "Ounce": _POUND / 16,
        "Pound": _POUND,
        "ShortHundredweight": _POUND * 100,
        "ShortTon": _POUND * 2000,
        "Stone": _POUND * 14,
        "Tonne": 1e3,
    },
    "volume": {
        "AcreFoot": 1 / 0.000810714,
        "AuTablespoon": 2e-5,
        "Centiliter": 1e-5,
        "CubicCentimeter": 1e-6,
        "CubicDecimeter": 1e-3,
        "CubicHectometer": 1e6,
        "CubicKilometer": 1e9,
        "CubicMeter": 1.0,
        "CubicMicrometer": 1e-18,
        "CubicMillimeter": 1e-9,
        "Decaliter": 1e-2,
        "Deciliter": 1e-4,
        "HectocubicMeter": 100.0,
        "Hectoliter": 0.1,
        "KilocubicMeter": 1e3,
        "Kiloliter": 1.0,
        "Liter": 1e-3,
        "Megaliter": 1e3,
        "MetricCup": 2.5e-4,
        "MetricTeaspoon": 5e-6,
        "Microliter": 1e-9,
        "Milliliter": 1e-6,
        "UkTablespoon": 1.5e-5,
        "UsLegalCup": 2.4e-4,
    },
}

_LENGTHS_PER = {
    "Centimeter": ("Second", "Minute", "Hour"),
    "Decimeter": ("Second", "Minute"),
    "Foot": ("Second", "Minute", "Hour"),
    "Inch": ("Second", "Minute", "Hour"),
    "Kilometer": ("Second", "Minute", "Hour"),
    "Meter": ("Second", "Minute", "Hour"),
    "Micrometer": ("Second", "Minute"),
    "Millimeter": ("Second", "Minute", "Hour"),
    "Nanometer": ("Second", "Minute"),
    "Yard": ("Second", "Minute", "Hour"),
}
_SECONDS = {"Second": 1.0, "Minute": 60.0, "Hour": 3600.0}
FACTORS["speed"] = {
    f"{length}Per{per}": FACTORS["length"][length] / _SECONDS[per]
    for length, pers in _LENGTHS_PER.items()
    for per in pers
}
FACTORS["speed"]["MilePerHour"] = 0.44704  # exact: 1609.344 m per 3600 s

#: Kusto's units whose constant is not reproduced: published sources differ (and Kusto's own tables
#: round some, as the reference's acre-foot shows), or the conversion is not linear (Tilt).
UNCERTAIN: dict[str, tuple[str, ...]] = {
    "angle": ("Tilt",),
    "energy": (
        "DecathermEc",
        "DecathermImperial",
        "DecathermUs",
        "ElectronVolt",
        "FootPound",
        "GigaelectronVolt",
        "HorsepowerHour",
        "KiloelectronVolt",
        "MegaelectronVolt",
        "TeraelectronVolt",
        "ThermEc",
        "ThermImperial",
        "ThermUs",
    ),
    "force": ("Poundal",),
    "length": (
        "AstronomicalUnit",
        "Chain",
        "DataMile",
        "DtpPica",
        "DtpPoint",
        "Fathom",
        "Hand",
        "KilolightYear",
        "Kiloparsec",
        "LightYear",
        "MegalightYear",
        "Megaparsec",
        "Mile",
        "Parsec",
        "PrinterPica",
        "PrinterPoint",
        "Shackle",
        "SolarRadius",
        "Twip",
        "UsSurveyFoot",
    ),
    "mass": ("EarthMass", "Slug", "SolarMass"),
    "speed": ("Knot", "UsSurveyFootPerHour", "UsSurveyFootPerMinute", "UsSurveyFootPerSecond"),
    "temperature": ("SolarTemperature",),
    "volume": (
        "BoardFoot",
        "CubicFoot",
        "CubicInch",
        "CubicMile",
        "CubicYard",
        "DecausGallon",
        "DeciusGallon",
        "HectocubicFoot",
        "HectousGallon",
        "ImperialBeerBarrel",
        "ImperialGallon",
        "ImperialOunce",
        "ImperialPint",
        "KilocubicFoot",
        "KiloimperialGallon",
        "KilousGallon",
        "MegacubicFoot",
        "MegaimperialGallon",
        "MegausGallon",
        "OilBarrel",
        "UsBeerBarrel",
        "UsCustomaryCup",
        "UsGallon",
        "UsOunce",
        "UsPint",
        "UsQuart",
        "UsTablespoon",
        "UsTeaspoon",
    ),
}

#: Temperatures to and from kelvin: (scale, offset) with kelvin = value * scale + offset.
TEMPERATURES: dict[str, tuple[float, float]] = {
    "DegreeCelsius": (1.0, 273.15),
    "DegreeDelisle": (-2 / 3, 373.15),
    "DegreeFahrenheit": (5 / 9, 459.67 * 5 / 9),
    "DegreeNewton": (100 / 33, 273.15),
    "DegreeRankine": (5 / 9, 0.0),
    "DegreeReaumur": (5 / 4, 273.15),
    "DegreeRoemer": (40 / 21, 273.15 - 7.5 * 40 / 21),
    "Kelvin": (1.0, 0.0),
    "MillidegreeCelsius": (1e-3, 273.15),
}


def _unit(family: str, arg: ir.Expr, known: Any) -> str | None:
    """The unit a literal argument names; None when Kusto would not know it (the result is null)."""
    name = lit_str(arg)
    if name is None:
        raise Refusal(f"convert_{family} with a computed unit")
    if name in UNCERTAIN.get(family, ()):
        raise Refusal(f"convert_{family} unit {name!r}", reason="its conversion constant is not settled")
    if name in known:
        return name
    if any(k.lower() == name.lower() for k in (*known, *UNCERTAIN.get(family, ()))):
        raise Refusal(f"convert_{family} unit {name!r}", reason="unit names are matched exactly; check the case")
    return None


def _linear(family: str):
    def emit(g, c, pred):
        table = FACTORS[family]
        src, dst = _unit(family, c.args[1], table), _unit(family, c.args[2], table)
        if src is None or dst is None:
            return g.d.typed_null(T.REAL)
        base = exp.Mul(this=g.e(c.args[0]), expression=n(table[src]))
        return exp.Div(this=paren(base), expression=n(table[dst]))

    return emit


for _family in FACTORS:
    TABLE.scalar(f"convert_{_family}", 3, T.REAL, coerce=("real", "string", "string"))(_linear(_family))


@TABLE.scalar("convert_temperature", 3, T.REAL, coerce=("real", "string", "string"))
def _temperature(g, c, pred):
    src, dst = _unit("temperature", c.args[1], TEMPERATURES), _unit("temperature", c.args[2], TEMPERATURES)
    if src is None or dst is None:
        return g.d.typed_null(T.REAL)
    (a, b), (p, q) = TEMPERATURES[src], TEMPERATURES[dst]
    kelvin = exp.Add(this=exp.Mul(this=g.e(c.args[0]), expression=n(a)), expression=n(b))
    return exp.Div(this=paren(exp.Sub(this=paren(kelvin), expression=n(q))), expression=n(p))
