#!/usr/bin/env python
from meterpay.manage import main

if __name__ == "__main__":
    main()
