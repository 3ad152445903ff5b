"""What jobmagics adds to IPython itself: the magic line's parser and tab completion."""
