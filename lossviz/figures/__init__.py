"""Plotly figure builders: numpy arrays and lossviz.results in, go.Figure out. No torch, no streamlit."""
