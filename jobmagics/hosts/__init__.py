"""Where jobs run: threads of the kernel, or agents reached over a transport."""
