"""Prompt-removal eligibility judged by an LLM (scripts/judge_prompt_eligibility.py): may a review
sample lose its system prompt? `requests` builds the judge call, `verdicts` keeps the verdict file
the export reads with `eligibility_source` "llm" (and the regex rule it replaces), `agreement`
compares the two rules (scripts/eligibility_agreement.py).
"""
