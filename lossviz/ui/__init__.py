"""The only package that imports streamlit: widgets generated from Param specs, caching, URL state."""
