"""MNA scoring (NSynth note analysis): the release's field accuracies, pitch chroma and sonic-quality macro AP.

Must not: parse note analyses itself (``formats.parse_note_analysis`` is the one parser), import torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenaudio_train.eval.classification import average_precision
from qwenaudio_train.eval.common import Scores, check_pairs, ratio
from qwenaudio_train.formats import NSYNTH_QUALITIES, parse_note_analysis


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
    }
    if details:
        out["details"] = [{"pred": h, "ref": r} for h, r in zip(hyps, refs)]
        out["sonic_ap"] = aps
    return out
