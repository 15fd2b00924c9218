class AEVB: pass
