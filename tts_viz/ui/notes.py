"""Short classroom notes: what each strategy and view does, and the paper finding it shows."""

from __future__ import annotations

STRATEGY_NOTES: dict[str, str] = {
    "majority": (
        "**Majority vote.** Sample N whole solutions and return the most common answer; no verifier. "
        "It is the baseline every search method must beat: it gains little once the model's answers "
        "are spread thin (Snell et al. 2024 use it as the no-verifier reference)."
    ),
    "best-of-n": (
        "**Best-of-N.** Sample N whole solutions, score each with the verifier, return the top one. "
        "Simple and parallel; Liu et al. 2025 find it is the best choice for *large* policies, "
        "while small ones gain more from step-level search."
    ),
    "weighted-best-of-n": (
        "**Weighted best-of-N.** Like best-of-N, but solutions with the same answer pool their scores "
        "and the answer with the largest sum wins. Snell et al. 2024 use it as the strong "
        "parallel baseline that compute-optimal scaling matches with about 4x less compute."
    ),
    "beam": (
        "**Beam search.** Grow solutions one step at a time: N candidates per round, the verifier "
        "scores each step, the top N/M survive and each proposes M next steps. Snell et al. 2024: "
        "it beats best-of-N at low budgets and on hard questions, but can over-optimise the verifier "
        "on easy ones."
    ),
    "dvts": (
        "**Diverse verifier tree search (DVTS).** Split the budget into N/M independent subtrees, "
        "each a small greedy beam. Keeping subtrees apart keeps the answers diverse; Liu et al. "
        "2025 find it best for mid-size policies on easy and medium questions."
    ),
    "lookahead": (
        "**Lookahead search.** Beam search whose step score is the verifier's score after a k-step "
        "greedy rollout: it looks ahead before pruning. Snell et al. 2024 found the extra rollout "
        "compute rarely pays off against plain beam search at equal budget."
    ),
    "revisions": (
        "**Sequential revisions.** The model sees its earlier attempts and writes a revised one; N = "
        "chains x L attempts. Snell et al. 2024: easy questions prefer sequential revisions, harder "
        "ones a mix of parallel chains and sequential steps."
    ),
    "early-stop-vote": (
        "**Early-stopping vote.** Majority voting in batches of M samples that stops as soon as the leading "
        "answer cannot be caught by the runner-up with the samples left: the same answer as the full vote, often "
        "for a fraction of the budget (early-stopping self-consistency, Li et al. 2024). Below 1, Advanced's vote "
        "confidence also stops once a Beta posterior says the leader very likely wins (Adaptive-Consistency, "
        "Aggarwal et al. 2023): more saved, sometimes a different answer. The summary shows the compute spent "
        "against the budget."
    ),
    "deepconf": (
        "**Confidence filtering (DeepConf).** A quarter of the budget is written in full; their weakest "
        "16-token stretch of token probabilities sets a confidence threshold (90% of them reach it; Advanced sets "
        "the share), and every later sample is abandoned "
        "the moment its confidence falls below it. The kept samples vote, weighted by confidence (Fu et al. 2025, "
        "Deep Think with Confidence): fewer tokens for the same vote when the model knows when it is lost. The "
        "summary shows the tokens spent against the full budget's."
    ),
    "particle-filter": (
        "**Particle filtering.** N partial solutions (particles) grow a step per round; the verifier's scores "
        "become weights, and when they get uneven the particles are resampled: a strong one is copied (its node "
        "branches), a weak one dropped, drawn by weight rather than ranked, so some diversity survives an unsure "
        "verifier. Puri et al. 2025 report it scaling 4-16x better than deterministic search. Node size = weight."
    ),
    "particle-gibbs": (
        "**Particle Gibbs.** Particle filtering run twice on half the budget each; the second run keeps the "
        "first run's best particle as a reference that always survives resampling, so new particles must "
        "outweigh it to take over, or branch off its path when they copy it (Puri et al. 2025; its_hub). "
        "Hover a node for its weight and whether it is the reference."
    ),
    "mcts": (
        "**MCTS.** Each iteration walks down by UCT (a child's mean verifier value plus an exploration bonus for "
        "rarely visited ones), expands the node it reaches with M sampled steps, rolls each out to a finished "
        "solution whose verifier score is its value, and adds the values back up the path: the search returns to "
        "branches that keep scoring well (step-level MCTS as in llm-reasoners and OpenR). Hover a node for its "
        "visits and value; the budget is N solutions' worth of tokens."
    ),
    "auto": (
        "**Compute-optimal (auto).** Estimate the question's difficulty from a few samples' verifier "
        "scores, then pick the strategy that did best for that difficulty and budget. Snell et al. "
        "2024: this matches best-of-N with about 4x less compute. How close this app's own study comes "
        "(small policy, generated problems) is the budget ratio on the Scaling tab."
    ),
}

VIEW_NOTES = {
    "tree": (
        "Each dot is one solution step; colour = the verifier's step score (red 0, green 1, same "
        "scale in every run), faded = pruned, diamonds = finished solutions labelled with their "
        "answer (✓/✗ when the gold answer is known), the thick path = the chosen solution. "
        "Click a dot to inspect its path."
    ),
    "prm": (
        "A process reward model scores every step. Paste a solution (steps separated by blank "
        "lines) or take the clicked node's path, and compare verifiers side by side; the first step "
        "below the threshold is where the verifier thinks the solution went wrong. Liu et al. 2025: "
        "which strategy wins depends on the PRM (reward-aware allocation)."
    ),
    "compare": (
        "Two strategies on the same problem, budget and seed. Try beam vs best-of-N at a small N: "
        "Snell et al. 2024 and Liu et al. 2025 both find step-level search helps small policies most."
    ),
    "scaling": (
        "Results of the calibration sweep shipped with the app (`python -m tts_viz sweep`): every "
        "strategy at every budget on generated problems. Left panel: all problems of the split; the "
        "others: one per difficulty bin of the problems' oracle pass@1 (absolute: Liu et al.'s "
        "easy > 0.5 > medium > 0.1 > hard; quantile: Snell et al.'s 5 bins fitted on the validation "
        "split). The thick black line is `auto`, the compute-optimal allocator, evaluated on the same "
        "samples as the pool rules (its probes are the pool's first samples; a search it chooses runs on "
        "what is left of the budget). DVTS and revisions at a smaller budget are read off their run at "
        "the largest (its first subtrees or chains: the same search, as the pool rules share one pool) "
        "for the problems swept since that change. Below: accuracy against "
        "total FLOPs per problem, the small policy's search beside a bigger policy at matched compute."
    ),
}
VIEW_NOTES["quality"] = (
    "**Verifier quality as a dial.** The same strategies with the oracle verifier at step AUROC 0.6, 0.75, 0.9 "
    "and exact (it knows the answer: a study device, not a real verifier). Snell et al. 2024 and Liu et al. "
    "2025 find that search pays only with a good verifier: read where each line crosses majority vote."
)


VERIFIER_NOTES = {
    "oracle": (
        "**Oracle (knows the answer).** Not a real verifier: it reads the gold answer and the problem's known "
        "intermediate values, so every step gets its true label (on GSM8K / MATH-500 rows only the arithmetic "
        "and the final answer can be checked). With it, search finds whatever the policy can write: best-of-N "
        "reaches pass@N, the ceiling that Liu et al. 2025's jump from 47% (majority) to 76% (search with a "
        "strong PRM) is climbing towards."
    ),
    "oracle@": (
        "**Verifier quality (AUROC).** The oracle's scores with seeded noise, calibrated so that a right step "
        "outscores a wrong one with this probability (0.5 = chance, 1 = exact); the same problem, path and seed "
        "always get the same score. Turn it down and watch search lose to voting: Snell et al. 2024 find that "
        "beam search over-optimises a weak verifier, while with a strong one it beats best-of-N at small budgets."
    ),
}


def verifier_note(name: str | None, quality: float | None = None) -> str:
    """The note for the chosen verifier ("" for verifiers without one)."""
    if name != "oracle":
        return ""
    if quality is None or float(quality) >= 1.0:
        return VERIFIER_NOTES["oracle"]
    return VERIFIER_NOTES["oracle"] + "\n\n" + VERIFIER_NOTES["oracle@"]


def strategy_note(name: str | None) -> str:
    return STRATEGY_NOTES.get(name or "", "")
