"""What travels with a job: the names its code reads, and how they are sent."""
