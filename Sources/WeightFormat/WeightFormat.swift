// WeightFormat module.
