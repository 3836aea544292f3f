"""What the digits examples share (train.py, train_cnn.py, ../deep/train.py): scikit-learn's 8x8 digits with
the pixels scaled to [0, 1], split 75/25 (stratified, seed 0), and the square activation as a PyTorch module."""
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


def digits_split():
    """x_train, x_test, y_train, y_test: the pixels / 16 (float32) and the labels."""
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return train_test_split(x, data.target, test_size=0.25, random_state=0, stratify=data.target)
