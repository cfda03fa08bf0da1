"""The SQL of the storage backends: every statement is a named constant here, nowhere else."""
