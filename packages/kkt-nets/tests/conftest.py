import torch

# One intra-op thread: the test problems are tiny, and OpenMP threads that spin
# while other processes hold the cores make tiny steps several times slower.
torch.set_num_threads(1)
