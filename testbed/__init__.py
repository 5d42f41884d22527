"""The local fleet: real machines and fake Ollama backends on this VM, nowhere else."""
