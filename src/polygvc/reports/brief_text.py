"""Fixed English and Simplified Chinese text of the policy brief, and the likelihood scale.

Only fixed wording lives here. Every number, province, year and exclusion
reason is filled in from the results by :mod:`polygvc.reports.brief`.

The likelihood words follow the calibrated language of the IPCC guidance note
on uncertainties (Mastrandrea et al. 2010, *Guidance Note for Lead Authors of
the IPCC Fifth Assessment Report on Consistent Treatment of Uncertainties*).
The Chinese words are this project's renderings of those terms.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class LikelihoodTerm:
    """One step of the likelihood scale: probabilities in [low, high] get these words."""

    low: float
    high: float
    en: str
    zh: str


# Checked in order; the first matching step wins, so the boundaries 0.33 and
# 0.66 belong to "unlikely" and "likely".
LIKELIHOOD_SCALE: tuple[LikelihoodTerm, ...] = (
    LikelihoodTerm(0.99, 1.00, "virtually certain", "几乎确定"),
    LikelihoodTerm(0.90, 0.99, "very likely", "很可能"),
    LikelihoodTerm(0.66, 0.90, "likely", "可能"),
    LikelihoodTerm(0.00, 0.01, "exceptionally unlikely", "极不可能"),
    LikelihoodTerm(0.01, 0.10, "very unlikely", "很不可能"),
    LikelihoodTerm(0.10, 0.33, "unlikely", "不太可能"),
    LikelihoodTerm(0.33, 0.66, "about as likely as not", "可能性相当"),
)
SCALE_DISPLAY_ORDER = (0, 1, 2, 6, 5, 4, 3)
SCALE_SOURCE = (
    "Mastrandrea, M. D. et al. (2010). Guidance Note for Lead Authors of the IPCC Fifth "
    "Assessment Report on Consistent Treatment of Uncertainties. IPCC."
)


def likelihood_term(probability: float) -> LikelihoodTerm:
    """Return the scale step of a probability in [0, 1] (see :data:`LIKELIHOOD_SCALE`)."""
    p = min(max(float(probability), 0.0), 1.0)
    if p >= 0.99:
        return LIKELIHOOD_SCALE[0]
    if p >= 0.90:
        return LIKELIHOOD_SCALE[1]
    if p >= 0.66:
        return LIKELIHOOD_SCALE[2]
    if p <= 0.01:
        return LIKELIHOOD_SCALE[3]
    if p <= 0.10:
        return LIKELIHOOD_SCALE[4]
    if p <= 0.33:
        return LIKELIHOOD_SCALE[5]
    return LIKELIHOOD_SCALE[6]


def likelihood_word(probability: float, lang: str) -> str:
    """Return the likelihood word of a probability in ``lang`` ("en" or "zh")."""
    return getattr(likelihood_term(probability), lang)


def scale_range(term: LikelihoodTerm) -> str:
    """Return the probability range of a step as text, e.g. ``"0.90-0.99"``."""
    if term.high >= 1.0 and term.low >= 0.99:
        return "≥ 0.99"
    if term.low <= 0.0:
        return "≤ 0.01"
    return f"{term.low:.2f}–{term.high:.2f}"


OUTCOME_DESCRIPTION = {
    "vae_gdp_pct": {
        "en": "export-induced domestic value added as a share of the province's GDP (%)",
        "zh": "出口引致的国内增加值占本省 GDP 的比重（%）",
    },
    "dvar_exports": {
        "en": "export-induced domestic value added per unit of exports",
        "zh": "单位出口引致的国内增加值",
    },
}

OUTCOME_UNIT = {
    "vae_gdp_pct": {"en": "percentage points", "zh": "个百分点"},
}
DEFAULT_UNIT = {"en": "outcome units", "zh": "个单位"}

ENDOG_DESCRIPTION = {
    "poly_rank_size_all": {
        "en": "the rank-size slope of night-time light across a province's prefecture cities "
        "(negative; closer to 0 = more polycentric)",
        "zh": "省内各地级市夜间灯光的位序-规模斜率（为负值；越接近 0 越多中心）",
    },
}

FLAG_TEXT = {
    "new_province": {
        "en": "no estimate: drawn from its region",
        "zh": "无估计值：按所在地区总体抽取",
    },
    "year_not_in_model": {"en": "year outside the model years", "zh": "年份不在模型样本内"},
    "outside_province_range": {"en": "beyond the province's own range", "zh": "超出本省历史范围"},
    "outside_national_range": {"en": "beyond the fitted national range", "zh": "超出全国拟合范围"},
    "beyond_boundary_knots": {"en": "beyond the spline's boundary knots", "zh": "超出样条边界节点"},
    "crosses_threshold": {"en": "crosses a threshold regime", "zh": "跨越门槛区制"},
}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "html_lang": "en",
        "title": (
            "Policy brief: polycentric development and China's provinces in global value chains"
        ),
        "subtitle": "Scenario results from a hierarchical Bayesian instrumental-variable model",
        "question_h": "The question",
        "question": (
            "Would provinces whose economic activity is spread over several city centres, "
            "rather than concentrated in one, gain a larger role in global value chains? This "
            "brief reports what the fitted model implies for the policy scenarios below."
        ),
        "outcome_line": "Outcome: {outcome}.",
        "endog_line": "Polycentricity is measured by {endog}.",
        "headline_h": "Main results",
        "headline": (
            "{label}: across {n} provinces, the outcome changes on average by {mean} "
            "{unit} ({ci}% interval {lower} to {upper}). A gain is {word} "
            "(probability {p}); a gain above {rope} {unit} is {word_rope} (probability {p_rope})."
        ),
        "data_h": "Data and their limits",
        "data_rows": (
            "The model uses {n_rows} province-years: {n_prov} provinces in {n_years} years "
            "({years})."
        ),
        "thin": (
            "The outcome exists for only {n_years} years, so each province contributes at most "
            "{n_years} observations and province estimates lean heavily on their region."
        ),
        "model_based": (
            "The outcome is itself a model estimate: Wu, Li and Lei (2016, SpringerPlus 5:210) "
            "derived it from China's multi-regional input-output tables and published it rounded "
            "to whole percentages. It is not a measured customs statistic."
        ),
        "excluded_h": "Provinces without estimates",
        "excluded_note": "",
        "map_h": "Where the first scenario acts",
        "map_caption": (
            "Expected change in the outcome ({unit}) under “{label}”. Grey hatched "
            "provinces have no estimate."
        ),
        "no_map": "The map could not be drawn: {reason}",
        "map_missing_label": "no estimate",
        "table_h": "Provinces ranked by expected gain",
        "col_rank": "Rank",
        "col_province": "Province",
        "col_mean": "Expected change",
        "col_interval": "{ci}% interval",
        "col_p": "P(gain)",
        "col_p_rope": "P(gain > {rope})",
        "col_word": "A gain is",
        "col_flags": "Caution",
        "compare_h": "Scenarios compared",
        "compare_caption": (
            "National average change per scenario: point = posterior mean, bar = {ci}% interval."
        ),
        "scale_h": "How to read the likelihood words",
        "scale_intro": (
            "Probabilities are shares of posterior draws. Words follow the IPCC likelihood scale:"
        ),
        "scale_prob": "Probability",
        "scale_word": "Term",
        "diagnostics_h": "Is the fit trustworthy?",
        "diagnostics": "Sampler diagnostics verdict: {verdict}.",
        "verdict_pass": "pass (all convergence checks met their thresholds)",
        "verdict_warn": "warn (some convergence checks are marginal; read the full report)",
        "verdict_fail": "fail (do not use these numbers before fixing the fit)",
        "verdict_missing": "not available (diagnostics.json has no verdict)",
        "caveats_h": "Caveats",
        "caveat_flags": (
            "{label}: {n} of {total} province results extrapolate beyond the data ({kinds})."
        ),
        "caveat_no_flags": "{label}: no province result leaves the range of the data.",
        "caveat_weak": (
            "Instrument strength: effective F = {eff_f} against a critical value of {crit} "
            "(Montiel Olea–Pflueger, 10% worst-case bias); Kleibergen-Paap rank test p = {kp_p}. "
            "{verdict}"
        ),
        "weak_yes": "The instruments are weak by this test, so the causal slope is uncertain.",
        "weak_no": "The instruments pass this test.",
        "caveat_ar": "Weak-instrument-robust Anderson-Rubin set for the slope: {ar}.",
        "caveat_causal": (
            "Effects are model-based: they assume the instruments affect the outcome only "
            "through polycentricity and that the linear outcome equation holds in the changed "
            "range."
        ),
        "method_h": "How the numbers were computed",
        "method": (
            "For each posterior draw the model's outcome equation is evaluated with the changed "
            "values set by intervention, minus the same equation at the observed values. "
            "Intervals are {kind} {ci}% posterior intervals; the outcome range adds the model's "
            "residual noise. National and regional figures average provinces with {weights} "
            "weights. Random draws are seeded ({seed})."
        ),
        "equal": "equal",
        "source_note": "Generated by polygvc {version} from run folder {run}.",
        "na": "n/a",
        "zh_reason_note": "",
    },
    "zh": {
        "html_lang": "zh-Hans",
        "title": "政策简报：多中心发展与中国各省在全球价值链中的地位",
        "subtitle": "基于分层贝叶斯工具变量模型的情景分析结果",
        "question_h": "研究问题",
        "question": (
            "如果一个省的经济活动分布在多个城市中心，而不是集中于单一中心，它在全球价值链中的作用"
            "会不会更大？本简报报告拟合模型对以下政策情景的推断。"
        ),
        "outcome_line": "结果变量：{outcome}。",
        "endog_line": "多中心程度的度量：{endog}。",
        "headline_h": "主要结果",
        "headline": (
            "{label}：在 {n} 个省中，结果变量平均变化 {mean} {unit}（{ci}% 区间 {lower} 至 "
            "{upper}）。出现增长{word}（概率 {p}）；增长超过 {rope} {unit}{word_rope}"
            "（概率 {p_rope}）。"
        ),
        "data_h": "数据及其局限",
        "data_rows": "模型使用 {n_rows} 个省-年观测：{n_prov} 个省，{n_years} 个年份（{years}）。",
        "thin": (
            "结果变量只有 {n_years} 个年份，每个省最多贡献 {n_years} 个观测，"
            "因此省级估计在很大程度上依赖所在地区的信息。"
        ),
        "model_based": (
            "结果变量本身是模型估计值：Wu、Li 和 Lei（2016，SpringerPlus 5:210）根据中国多区域"
            "投入产出表推算，并以整数百分比发表，并非海关实测统计。"
        ),
        "excluded_h": "没有估计值的省份",
        "excluded_note": "（原因说明来自数据面板，为英文原文）",
        "map_h": "第一个情景的作用地域",
        "map_caption": "情景“{label}”下结果变量的预期变化（{unit}）。灰色斜线省份没有估计值。",
        "no_map": "地图未能绘制：{reason}",
        "map_missing_label": "无估计值",
        "table_h": "各省按预期增益排序",
        "col_rank": "排序",
        "col_province": "省份",
        "col_mean": "预期变化",
        "col_interval": "{ci}% 区间",
        "col_p": "增长概率",
        "col_p_rope": "增长超过 {rope} 的概率",
        "col_word": "增长的可能性",
        "col_flags": "注意",
        "compare_h": "情景比较",
        "compare_caption": "各情景下全国平均变化：点为后验均值，线段为 {ci}% 区间。",
        "scale_h": "可能性用语说明",
        "scale_intro": "概率为后验抽样中满足条件的比例。用语参照 IPCC 可能性等级：",
        "scale_prob": "概率",
        "scale_word": "用语",
        "diagnostics_h": "拟合结果可信吗？",
        "diagnostics": "抽样诊断结论：{verdict}。",
        "verdict_pass": "通过（各项收敛检验均达到阈值）",
        "verdict_warn": "警告（部分收敛检验处于边缘，请阅读完整报告）",
        "verdict_fail": "未通过（修正拟合之前请勿使用这些数字）",
        "verdict_missing": "不可用（diagnostics.json 中没有结论）",
        "caveats_h": "注意事项",
        "caveat_flags": "{label}：{total} 个省级结果中有 {n} 个超出数据范围外推（{kinds}）。",
        "caveat_no_flags": "{label}：所有省级结果均在数据范围之内。",
        "caveat_weak": (
            "工具变量强度：有效 F = {eff_f}，临界值为 {crit}"
            "（Montiel Olea–Pflueger，10% 最坏偏误）；Kleibergen-Paap 秩检验 p = {kp_p}。{verdict}"
        ),
        "weak_yes": "按此检验工具变量偏弱，因果斜率的不确定性较大。",
        "weak_no": "工具变量通过此检验。",
        "caveat_ar": "对弱工具变量稳健的 Anderson-Rubin 斜率集合：{ar}。",
        "caveat_causal": (
            "效应基于模型：假设工具变量只通过多中心程度影响结果变量，并且线性结果方程在变化范围内成立。"
        ),
        "method_h": "计算方法",
        "method": (
            "对每一个后验抽样，将情景中的变量按干预设定后计算结果方程，减去观测值下的同一方程。"
            "区间为 {kind} {ci}% 后验区间；结果变量的区间加入了模型残差噪声。全国和地区数字以"
            "{weights}权重对各省平均。随机抽样使用固定种子（{seed}）。"
        ),
        "equal": "相等",
        "source_note": "由 polygvc {version} 根据运行目录 {run} 生成。",
        "na": "无",
        "zh_reason_note": "",
    },
}

REGION_NAMES = {
    "East": {"en": "East", "zh": "东部"},
    "Central": {"en": "Central", "zh": "中部"},
    "West": {"en": "West", "zh": "西部"},
    "Northeast": {"en": "Northeast", "zh": "东北"},
}
