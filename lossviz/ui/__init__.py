"""The Streamlit layer: widgets from Fields and the registry, cached compute, URL/session state, the page
skeleton. The only package that imports streamlit.

Importing it pins torch to one intra-op thread for the whole server process, once: the thread count is
process-wide, the app's models are tiny (splitting a 32-wide matmul over threads costs more than it
gains), and on a shared 2-core machine spinning threads made a 0.1 s training run take 3-15 s (measured).
"""

import torch

torch.set_num_threads(1)
