"""Thresholds for the three bands, fitted by leave-one-out over the playbook examples, never hand-picked.

Each example is scored against the base with itself removed. In-scope examples should land on their own
playbook; out-of-scope examples should land on an out-of-scope playbook or below the lower threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Where the bands start, how confident a score is, and how well this held on the examples."""

    t_low: float  # best score under this: out of scope
    t_high: float  # best score at or over this: answer; in between: clarify
    slope: float  # logistic map from score to the probability the best playbook is right
    intercept: float
    target_precision: float
    answer_precision: float  # measured on the left-out examples
    answered_share: float
    in_scope_kept: float
    out_of_scope_rejected: float
    examples: int
    out_of_scope_examples: int
    rule: str = "balanced"  # how t_low was chosen
    temperature: float = 0.05  # softmax temperature turning scores into class probabilities (fitted, see fit)
    group_threshold: float = 0.5  # a group (technical, business, out of scope) is decided at this probability
    group_precision: float = 0.0  # measured on the held-out examples at that threshold
    answer_share: float = 0.5  # a technical playbook is acted on when it holds this share of its group's top two
    answer_share_precision: float = 0.0  # held-out precision of the technical playbooks acted on at that share

    def confidence(self, score: float) -> float:
        return float(1.0 / (1.0 + np.exp(-(self.slope * score + self.intercept))))

    def as_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class HeldOut:
    """Leave-one-out outcome per example: best score, whether the best playbook is right, and the truth."""

    score: np.ndarray  # best score over all playbooks
    top_is_oos: np.ndarray  # the best playbook is an out-of-scope one
    correct: np.ndarray  # the best playbook is the example's own (or any out-of-scope one, for those)
    is_oos: np.ndarray  # the example itself is out of scope
    scores: np.ndarray | None = None  # examples x classes: every class's score, for the group calibration
    labels: np.ndarray | None = None  # each example's class (its column in `scores`)
    groups: np.ndarray | None = None  # each class's group: 0 technical, 1 business, 2 out of scope


DEFAULT_ACT_PRECISION = 0.85


def fit(held_out: HeldOut, target_precision: float, refusal_recall: float | None = None,
        act_precision: float = DEFAULT_ACT_PRECISION) -> Calibration:
    """Choose t_low, then t_high as the lowest score reaching the target precision.

    t_low balances in-scope kept and out-of-scope rejected; or, given `refusal_recall`, it is the lowest
    threshold at which we are 95% sure (one-sided Clopper-Pearson bound) that at least that share of
    out-of-scope queries is refused: held-out out-of-scope sets are small, and the bound keeps the chosen
    threshold from resting on a lucky handful.
    """
    score, top_oos, correct, is_oos = held_out.score, held_out.top_is_oos, held_out.correct, held_out.is_oos
    n_in, n_oos = int((~is_oos).sum()), int(is_oos.sum())
    cuts = _cut_points(score)

    def kept(t: float) -> float:
        return float(((~top_oos) & (score >= t))[~is_oos].mean()) if n_in else 0.0

    def rejected(t: float) -> float:
        return float((top_oos | (score < t))[is_oos].mean()) if n_oos else 1.0

    balanced = [(kept(t) + rejected(t)) / 2 for t in cuts]
    t_low = float(cuts[int(np.argmax(balanced))])
    rule = "balanced"
    if refusal_recall is not None:
        reaching = [t for t in cuts if _recall_lower_bound(rejected(t), n_oos) >= refusal_recall]
        if reaching:
            t_low, rule = float(reaching[0]), f"out-of-scope recall >= {refusal_recall:.0%} at 95% confidence"
        else:
            rule = f"balanced (out-of-scope recall {refusal_recall:.0%} unreachable with {n_oos} examples)"

    answered = ~top_oos
    t_high = float(score.max() + 1e-6)  # nothing answered outright unless some cut reaches the target
    for t in cuts[cuts >= t_low]:
        chosen = answered & (score >= t)
        if chosen.sum() >= max(3, 0.05 * n_in) and (correct & ~is_oos)[chosen].mean() >= target_precision:
            t_high = float(t)
            break
    chosen = answered & (score >= t_high)
    precision = float((correct & ~is_oos)[chosen].mean()) if chosen.any() else 0.0

    # Imported here: scikit-learn costs a second at start-up and only index builds need it.
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0)
    if len(set(correct.tolist())) == 2:
        model.fit(score.reshape(-1, 1), correct.astype(int))
        slope, intercept = float(model.coef_[0][0]), float(model.intercept_[0])
    else:
        slope, intercept = 0.0, 4.0 if correct.all() else -4.0
    temperature, group_threshold, group_precision = _fit_groups(held_out, target_precision)
    answer_share, share_precision = _fit_answer_share(held_out, temperature, act_precision)
    return Calibration(
        answer_share=answer_share,
        answer_share_precision=share_precision,
        temperature=temperature,
        group_threshold=group_threshold,
        group_precision=group_precision,
        t_low=t_low,
        t_high=t_high,
        slope=slope,
        intercept=intercept,
        target_precision=target_precision,
        answer_precision=precision,
        answered_share=float(chosen[~is_oos].mean()) if n_in else 0.0,
        in_scope_kept=kept(t_low),
        out_of_scope_rejected=rejected(t_low),
        examples=n_in,
        out_of_scope_examples=n_oos,
        rule=rule,
    )


GROUP_THRESHOLDS = np.round(np.arange(0.40, 0.96, 0.05), 2)


def group_probabilities(scores: np.ndarray, groups: np.ndarray, temperature: float) -> np.ndarray:
    """Per row, the probability of each group (technical, business, out of scope): the softmax of the class
    scores at `temperature`, summed over each group's classes. A message close to several playbooks of one
    group is clearly of that group even when no single playbook stands out."""
    z = scores / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))  # the best class is exp(0) = 1, so the sum is never 0
    p = z / z.sum(axis=1, keepdims=True)
    return np.stack([p[:, groups == g].sum(axis=1) for g in range(3)], axis=1)


def _fit_groups(held_out: HeldOut, target_precision: float) -> tuple[float, float, float]:
    """The softmax temperature that best predicts the held-out examples' own classes (maximum likelihood; an
    out-of-scope example counts as right on any out-of-scope class), then the lowest group probability at which
    the decided groups reach `target_precision` on them.

    Returns (temperature, group threshold, group precision measured at it)."""
    if held_out.scores is None or held_out.labels is None or held_out.groups is None:
        return 0.05, 0.5, 0.0
    scores, labels, groups = held_out.scores, held_out.labels, held_out.groups
    oos_columns = groups == 2
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    def loss(log_t: float) -> float:
        z = scores / np.exp(log_t)
        log_norm = logsumexp(z, axis=1)
        own = z[np.arange(len(labels)), labels]
        oos_mass = logsumexp(z[:, oos_columns], axis=1) if oos_columns.any() else own
        right = np.where(groups[labels] == 2, oos_mass, own)
        return float((log_norm - right).mean())

    temperature = float(np.exp(minimize_scalar(loss, bounds=(np.log(1e-3), np.log(10.0)), method="bounded").x))
    probabilities = group_probabilities(scores, groups, temperature)
    decided, truth = probabilities.argmax(axis=1), groups[labels]
    best = probabilities.max(axis=1)
    for threshold in GROUP_THRESHOLDS:
        chosen = best >= threshold
        if chosen.any() and (decided == truth)[chosen].mean() >= target_precision:
            return temperature, float(threshold), float((decided == truth)[chosen].mean())
    chosen = best >= GROUP_THRESHOLDS[-1]
    precision = float((decided == truth)[chosen].mean()) if chosen.any() else 0.0
    return temperature, float(GROUP_THRESHOLDS[-1]), precision


ANSWER_SHARES = np.round(np.arange(0.50, 0.96, 0.05), 2)


def top_two_share(best: np.ndarray, second: np.ndarray, temperature: float) -> np.ndarray:
    """The softmax share of the best of two scores: 0.5 when tied, near 1 when the best stands out."""
    return 1.0 / (1.0 + np.exp((second - best) / temperature))


def _fit_answer_share(held_out: HeldOut, temperature: float, target_precision: float) -> tuple[float, float]:
    """The lowest share of its group's top two at which a technical playbook acted on is the right one for
    `target_precision` of the held-out technical examples. Below it the user is asked which problem it is.
    The target is lower than the answer band's: a wrong first fix costs one "no" from the user (the dialogue
    then tries the next candidate), a question costs every user a turn."""
    if held_out.scores is None or held_out.labels is None or held_out.groups is None:
        return 0.5, 0.0
    technical = held_out.groups == 0
    rows = technical[held_out.labels]
    if not rows.any() or technical.sum() < 2:
        return 0.5, 0.0
    scores = held_out.scores[rows][:, technical]
    columns = np.flatnonzero(technical)
    order = np.argsort(-scores, axis=1)
    best, second = scores[np.arange(len(scores)), order[:, 0]], scores[np.arange(len(scores)), order[:, 1]]
    right = columns[order[:, 0]] == held_out.labels[rows]
    share = top_two_share(best, second, temperature)
    for threshold in ANSWER_SHARES:
        chosen = share >= threshold
        if chosen.sum() >= max(3, 0.05 * len(share)) and right[chosen].mean() >= target_precision:
            return float(threshold), float(right[chosen].mean())
    chosen = share >= ANSWER_SHARES[-1]
    return float(ANSWER_SHARES[-1]), float(right[chosen].mean()) if chosen.any() else 0.0


def _recall_lower_bound(recall: float, count: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound of a proportion observed as `recall` over `count` trials."""
    if count == 0:
        return 0.0
    successes = round(recall * count)
    if successes == 0:
        return 0.0
    from scipy.stats import beta

    return float(beta.ppf(1 - confidence, successes, count - successes + 1))


def _cut_points(score: np.ndarray) -> np.ndarray:
    """Midpoints between consecutive distinct scores, so a threshold never sits on an observed score."""
    distinct = np.unique(score)
    if len(distinct) < 2:
        return distinct
    return np.concatenate([[distinct[0] - 1e-6], (distinct[1:] + distinct[:-1]) / 2, [distinct[-1] + 1e-6]])


@dataclass(frozen=True)
class CalibrationReport:
    calibration: Calibration

    def lines(self) -> list[str]:
        c = self.calibration
        return [
            f"bands: out of scope < {c.t_low:.3f} <= clarify < {c.t_high:.3f} <= answer ({c.rule})",
            f"left-out examples: {c.examples} in scope, {c.out_of_scope_examples} out of scope",
            f"answer band: {c.answered_share:.1%} of in-scope examples at {c.answer_precision:.1%} precision "
            f"(target {c.target_precision:.0%})",
            f"in scope kept: {c.in_scope_kept:.1%}; out of scope rejected: {c.out_of_scope_rejected:.1%}",
            f"groups: decided at probability {c.group_threshold:.2f} (temperature {c.temperature:.3f}), "
            f"{c.group_precision:.1%} right on the held-out examples",
            f"technical playbooks acted on at {c.answer_share:.2f} of their group's top two, "
            f"{c.answer_share_precision:.1%} right on the held-out examples",
        ]
