"""Reports read only analysis results (``Result``), never the model or the inputs' contents."""
