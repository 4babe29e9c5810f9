"""The synthetic Jiaxing world: geography, people, organisations and 168 department feeds, with ground truth.

No real department data can be used, so the pipeline's input is generated here, deterministically from a seed,
at a scale where 1.0 is the whole city. The ground truth is written apart and never read by the pipeline.
"""
