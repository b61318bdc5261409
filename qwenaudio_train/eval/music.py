"""MNA scoring (NSynth note analysis): the release's field accuracies, pitch chroma and sonic-quality macro AP.

Must not: parse note analyses itself (``formats.parse_note_analysis`` is the one parser), import torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qwenaudio_train.eval.classification import average_precision
from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.formats import NSYNTH_QUALITIES, NoteInfo, parse_note_analysis, parse_note_analysis_release


def release_note_scores(references: Sequence[str], predictions: Sequence[str]) -> Scores:
    """The release's MNA numbers (``evaluate_note_analysis.py``) over one group, on its own reading of the texts
    (``formats.parse_note_analysis_release``): names kept as written, a field missing on both sides equal.

    * ``instrument_accuracy_release`` / ``velocity_accuracy_release``: exact equality of the release's fields.
    * ``pitch_accuracy_release`` (its ``top1acc``): equal pitch, 128 (unreadable) included.
    * ``pitch_chroma_accuracy_release`` (its ``chromaacc``): the release one-hot encodes the pitches of the group
      (references and predictions together, ``MultiLabelBinarizer``) and compares CLASS INDICES mod 12, i.e.
      ranks in the sorted set of pitches seen, not MIDI numbers (equal to ``pitch_chroma_accuracy`` only when
      those pitches are contiguous).
    * ``sonic_map_release``: ``average_precision_score(average="macro")`` over the labels of both sides.
    Also under the names the release prints: ``instrument_score``, ``velocity_score``, ``sonic_score``,
    ``top1acc``, ``chromaacc``.
    """
    refs = [parse_note_analysis_release(r) for r in references]
    hyps = [parse_note_analysis_release(p.strip()) for p in predictions]
    n = len(refs)

    def _acc(field: str) -> float:
        return ratio(sum(getattr(h, field) == getattr(r, field) for h, r in zip(hyps, refs)), n)

    classes = sorted({int(note.pitch or 0) for note in refs + hyps})
    index = {p: k for k, p in enumerate(classes)}
    chroma = sum(index[int(h.pitch or 0)] % 12 == index[int(r.pitch or 0)] % 12 for h, r in zip(hyps, refs))
    out: Scores = {
        "instrument_accuracy_release": _acc("instrument"),
        "velocity_accuracy_release": _acc("velocity"),
        "pitch_accuracy_release": _acc("pitch"),
        "pitch_chroma_accuracy_release": ratio(chroma, n),
        "sonic_map_release": _release_sonic_map(refs, hyps),
    }
    out.update(
        instrument_score=out["instrument_accuracy_release"],
        velocity_score=out["velocity_accuracy_release"],
        sonic_score=out["sonic_map_release"],
        top1acc=out["pitch_accuracy_release"],
        chromaacc=out["pitch_chroma_accuracy_release"],
    )
    return out


def _release_sonic_map(refs: Sequence[NoteInfo], hyps: Sequence[NoteInfo]) -> float:
    labels = sorted({q for note in [*refs, *hyps] for q in note.qualities})
    if not refs or not labels:
        return math.nan  # the release's sklearn call has no column to average here
    import warnings

    from sklearn.metrics import average_precision_score

    y_true = [[int(q in r.qualities) for q in labels] for r in refs]
    y_pred = [[int(q in h.qualities) for q in labels] for h in hyps]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's "no positive class" warning: the release prints it too
        return float(average_precision_score(y_true, y_pred, average="macro"))


def mna_score(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    qualities: Sequence[str] = NSYNTH_QUALITIES,
    details: bool = False,
) -> Scores:
    """Instrument, velocity, pitch (top-1 and chroma) accuracy and sonic-quality macro AP.

    * ``instrument_accuracy`` / ``velocity_accuracy`` / ``pitch_accuracy``: exact equality of the field; a
      field missing from the prediction is wrong.
    * ``pitch_chroma_accuracy``: ``pitch_p % 12 == pitch_r % 12`` on MIDI numbers. (The release takes ``% 12``
      of the class index in the sorted set of pitches seen in the group, which equals this when those pitches
      are contiguous, as on NSynth's test set.)
    * ``sonic_map``: macro average over labels of ``average_precision`` with the hard 0/1 prediction as the
      score, as the release's ``sklearn.average_precision_score(average="macro")``; the labels are those
      present in the references or the predictions of the group (the release's MultiLabelBinarizer over both).
      A label only predicted scores 0; nan when no label appears at all.
    * the release's own definitions, side by side (``release_note_scores``): ``*_release`` and the names the
      release prints. Those, not the fields above, stand beside the release's published NSynth numbers.
    * ``pitch_chroma_accuracy`` is chroma by MIDI number; ``pitch_chroma_accuracy_release`` by the release's
      class index: both are kept, each labelled.
    """
    check_pairs(predictions, references)
    refs = [parse_note_analysis(r, qualities) for r in references]
    hyps = [parse_note_analysis(p, qualities) for p in predictions]

    def _acc(field: str) -> float:
        hits = [getattr(h, field) is not None and getattr(h, field) == getattr(r, field) for h, r in zip(hyps, refs)]
        return ratio(sum(hits), len(hits))

    chroma = [h.pitch is not None and r.pitch is not None and h.pitch % 12 == r.pitch % 12 for h, r in zip(hyps, refs)]
    labels = sorted({q for note in refs + hyps for q in note.qualities})
    aps = {
        label: average_precision([label in r.qualities for r in refs], [float(label in h.qualities) for h in hyps])
        for label in labels
    }
    out: Scores = {
        "instrument_accuracy": _acc("instrument"),
        "velocity_accuracy": _acc("velocity"),
        "pitch_accuracy": _acc("pitch"),
        "pitch_chroma_accuracy": ratio(sum(chroma), len(chroma)),
        "sonic_map": ratio(sum(aps.values()), len(aps)),
        "parse_errors": float(sum(h.pitch is None or h.velocity is None or h.instrument is None for h in hyps)),
        "n": float(len(refs)),
        **release_note_scores(references, predictions),
    }
    if details:
        release_hits = [
            parse_note_analysis_release(p.strip()).instrument == parse_note_analysis_release(r).instrument
            for p, r in zip(predictions, references)
        ]
        out["details"] = [
            {"pred": h, "ref": r, "instrument_correct_release": hit} for h, r, hit in zip(hyps, refs, release_hits)
        ]
        out["sonic_ap"] = aps
    return out
