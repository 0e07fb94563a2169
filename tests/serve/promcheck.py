"""promcheck.py - a checker of the Prometheus text exposition format (version 0.0.4), for the
tests of `hyperlight serve`'s /metrics: parse() returns the samples, or raises ValueError
naming the line that breaks the format."""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
SAMPLE = re.compile(r"^(%s)(\{(.*)\})? (\S+)( -?\d+)?$" % NAME)
LABEL_PAIR = re.compile(r'(%s)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)' % LABEL)
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(text, lineno):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_PAIR.match(text, pos)
        if not m:
            raise ValueError("line %d: bad label set {%s}" % (lineno, text))
        if m.group(1) in labels:
            raise ValueError("line %d: label %s twice" % (lineno, m.group(1)))
        labels[m.group(1)] = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        pos = m.end()
    return labels


def parse_value(text, lineno):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(text)
    except ValueError:
        raise ValueError("line %d: bad value %r" % (lineno, text)) from None


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


def check_histograms(samples, types):
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for name, labels, value in samples:
            if name == fam + "_bucket":
                key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                series.setdefault(key, []).append((parse_value(labels["le"], 0), value))
        for key, buckets in series.items():
            les = [le for le, _ in buckets]
            if les != sorted(les) or les[-1] != math.inf:
                raise ValueError("%s%s: buckets not in order or no +Inf" % (fam, dict(key)))
            counts = [v for _, v in buckets]
            if counts != sorted(counts):
                raise ValueError("%s%s: buckets not cumulative" % (fam, dict(key)))
            count = [v for n, l, v in samples if n == fam + "_count" and tuple(sorted(l.items())) == key]
            sums = [v for n, l, v in samples if n == fam + "_sum" and tuple(sorted(l.items())) == key]
            if count != [counts[-1]] or len(sums) != 1:
                raise ValueError("%s%s: _count is not the +Inf bucket, or no _sum" % (fam, dict(key)))


def parse(text):
    """[(name, {labels}, value)] of text, checked: every sample's family has one TYPE given
    before its samples, no sample twice, histograms cumulative with +Inf = _count."""
    if text and not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    types, helps, samples, seen = {}, set(), [], set()
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                if not re.fullmatch(NAME, parts[2]):
                    raise ValueError("line %d: bad metric name" % lineno)
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES or parts[2] in types:
                        raise ValueError("line %d: bad or repeated TYPE" % lineno)
                    if any(family_of(n, {parts[2]: parts[3]}) == parts[2] for n, _, _ in samples):
                        raise ValueError("line %d: TYPE after samples of %s" % (lineno, parts[2]))
                    types[parts[2]] = parts[3]
                elif parts[2] in helps:
                    raise ValueError("line %d: HELP twice" % lineno)
                else:
                    helps.add(parts[2])
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (lineno, line))
        name, labels = m.group(1), parse_labels(m.group(3) or "", lineno)
        if family_of(name, types) not in types:
            raise ValueError("line %d: %s has no TYPE" % (lineno, name))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError("line %d: sample twice" % lineno)
        seen.add(key)
        samples.append((name, labels, parse_value(m.group(4), lineno)))
    check_histograms(samples, types)
    return samples


def value(samples, name, **labels):
    """The value of the one sample name{labels...} (labels may be a subset), else None."""
    found = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    if len(found) > 1:
        raise ValueError("%s%s matches %d samples" % (name, labels, len(found)))
    return found[0] if found else None
